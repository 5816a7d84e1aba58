"""Fill marketing's {{ variables }} in the one sandbox (core.templating), with errors a marketer can act on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError

from core.templating import compile_template, escape_markdown
from mailer.base import ComposeError


def render_template_text(source: str, context: Mapping[str, Any], *, markdown: bool = True, where: str = "") -> str:
    """Fill {{ variables }} in a sandbox; an unknown variable is an error, not a blank.

    With markdown (a body), every value is escaped so that it reads as plain text in the Markdown.
    """
    values = {key: escape_markdown(value) if markdown else value for key, value in context.items()}
    label = f"{where}: " if where else ""
    try:
        return compile_template(source).render(values)
    except UndefinedError as exc:
        raise ComposeError(f"{label}{exc.message} (variables you can use: {', '.join(sorted(context))})") from None
    except TemplateSyntaxError as exc:
        raise ComposeError(f"{label}line {exc.lineno}: {exc.message}") from None
    except TemplateError as exc:
        raise ComposeError(f"{label}{exc}") from None

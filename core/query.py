"""The URL's parameters as a plain dict, read once per request."""

from __future__ import annotations

from urllib.parse import parse_qsl

from flask import request

_KEY = "_first_values"


def first_values() -> dict[str, str]:
    """request.args.to_dict(): the first value of each parameter, parsed exactly as werkzeug parses request.args.

    Without the MultiDict, which a landing page view and its page-view count only read a few tags from, and kept
    on the request, so the second reader parses nothing.
    """
    req = request._get_current_object()  # type: ignore[attr-defined]
    found = req.__dict__.get(_KEY)
    if found is None:
        parsed = req.__dict__.get("args")  # request.args, when something has read it already
        if parsed is not None:
            found = parsed.to_dict()
        else:
            found = {}
            query = req.query_string.decode()
            if "%" in query or "+" in query:
                pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
            else:
                # Nothing to unquote (a campaign link's tags): what parse_qsl does, without its calls per pair.
                pairs = [pair.partition("=")[::2] for pair in query.split("&") if pair]
            for name, value in pairs:
                found.setdefault(name, value)
        req.__dict__[_KEY] = found
    return found

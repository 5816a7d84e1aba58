"""The local outbox's copies of sent email, and their removal when the person they concern is erased (the
receivers: mailer.erasure and alerts.receivers)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from email import policy
from email.parser import BytesParser
from pathlib import Path

log = logging.getLogger(__name__)


def _text(path: Path) -> str:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    parts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join(str(part) for part in parts)


def erase_copies(
    directory: str | Path,
    *,
    addresses: Iterable[str] = (),
    message_ids: Iterable[str] = (),
    containing: re.Pattern[str] | None = None,
) -> int:
    """Delete the .eml files sent to one of `addresses` or with one of `message_ids`; returns how many went.

    With `containing`, a file matched by its Message-ID only goes when its decoded text matches too (a digest
    that lists many leads). Headers alone are read for every other file, so a large outbox stays quick.
    """
    folder = Path(directory)
    wanted_to = {address.lower() for address in addresses if address}
    wanted_ids = {message_id.strip("<>") for message_id in message_ids if message_id}
    if not folder.is_dir() or not (wanted_to or wanted_ids):
        return 0
    removed = 0
    for path in folder.glob("*.eml"):
        try:
            with path.open("rb") as handle:
                head = BytesParser(policy=policy.default).parse(handle, headersonly=True)
            to = {address.addr_spec.lower() for address in getattr(head["To"], "addresses", ())}
            by_id = str(head.get("Message-ID", "")).strip().strip("<>") in wanted_ids
            if not (to & wanted_to) and not (by_id and (containing is None or containing.search(_text(path)))):
                continue
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue  # removed meanwhile
        except (ValueError, LookupError):
            log.warning("outbox file %s could not be read while erasing; left in place", path.name)
    return removed

"""What every process holds of the published content (campaigns, posts, site settings) and how it stays current.

A holder compares the database's content revision with the one it loaded at most every CONTENT_REFRESH_SECONDS
(one small query on its own short connection: a session's open transaction could show an old snapshot) and
reloads only when it moved; `stale()` makes the next read check at once (this process just published).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy import Connection, select
from sqlalchemy.exc import SQLAlchemyError

from core.db import db
from studio.models import ContentRevision


class RevisionWatch:
    """A process's copy of something published, reloaded when the content revision moves."""

    #: What the holder is called in the one warning logged before `flask db upgrade` (None: stay silent).
    what: str | None = None

    def __init__(self, app: Flask, refresh_seconds: float) -> None:
        self.app = app
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._checked = float("-inf")
        self._warned = False

    def load(self, conn: Connection) -> Any:
        """Read what is held from the database (called only when the revision moved)."""
        raise NotImplementedError

    def adopt(self, loaded: Any) -> None:
        """Hold what load() read."""
        raise NotImplementedError

    def stale(self) -> None:
        """Check the database on the next read (this process just published)."""
        self._checked = float("-inf")

    def check(self) -> None:
        """Refresh when the last check is older than the refresh interval (no query in between)."""
        if time.monotonic() - self._checked >= self.refresh_seconds:
            self.refresh()

    def refresh(self) -> bool:
        """Compare revisions and reload when they differ; True when what is held changed."""
        with self._lock:
            started = time.monotonic()
            try:
                with db.engine.connect() as conn:
                    revision = conn.scalar(select(ContentRevision.revision).where(ContentRevision.id == 1)) or 0
                    if revision == self._revision:
                        self._checked = started
                        return False
                    loaded = self.load(conn)
            except SQLAlchemyError as exc:
                if self.what and not self._warned:  # before `flask db upgrade` the tables do not exist yet
                    self.app.logger.warning("%s not loaded: %s", self.what, type(exc).__name__)
                    self._warned = True
                self._checked = started
                return False
            self.adopt(loaded)
            self._revision = revision
            self._checked = started
            return True

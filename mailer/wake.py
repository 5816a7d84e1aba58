"""Wake the nurture worker as soon as due mail is recorded and committed, instead of at its next tick.

The web side marks its session (`soon`); once that session commits, one empty notification goes out:
PostgreSQL `NOTIFY nurture_due`, sent in the transaction just before its commit (PostgreSQL delivers it with the
commit and drops it with a rollback, in one round trip on the connection already held), or for SQLite a datagram
on a unix socket next to the database file after the commit (web and worker share that file, so the socket).
The notification carries nothing: no id, no lead data. Sending never waits for a worker: with nobody listening
it is simply dropped, and the worker's tick (NURTURE_TICK_SECONDS) stays the safety net for any lost wake-up.
The worker side is `Listener`, a daemon thread that calls back for each notification.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

CHANNEL = "nurture_due"
_MARK = "nurture_wake"
_COMMITTED = "nurture_wake_committed"
# sun_path holds 108 bytes on Linux; a longer path gets an abstract-namespace name derived from it.
_MAX_SOCKET_PATH = 100
_sender: socket.socket | None = None
_sender_lock = threading.Lock()


def soon(session: Session) -> None:
    """Ask for a wake-up once this session's transaction commits (nothing is sent if it rolls back)."""
    session.info[_MARK] = True


def _before_commit(session: Session) -> None:
    # Part of the transaction, as its INSERTs are: PostgreSQL refuses a NOTIFY only when its notification queue
    # (8 GB) is full, which takes a listener stuck for days; the worker's listener reads it continuously.
    if session.info.get(_MARK) and session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(f"NOTIFY {CHANNEL}")
        session.info.pop(_MARK, None)


def _after_commit(session: Session) -> None:
    if session.info.pop(_MARK, False):
        session.info[_COMMITTED] = True


def _after_rollback(session: Session) -> None:
    session.info.pop(_MARK, None)
    session.info.pop(_COMMITTED, None)


def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    # Here the session's connection is back in the pool: the NOTIFY never needs a second one at once.
    if transaction.parent is None and session.info.pop(_COMMITTED, False):
        try:
            bind = session.get_bind()
        except Exception:  # noqa: BLE001 - the commit is done; a lost wake-up only costs a tick
            return
        notify(bind if isinstance(bind, Engine) else bind.engine)


def connect() -> None:
    """Send the wake-up after every commit of a marked session (idempotent)."""
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        event.listen(Session, "after_transaction_end", _after_transaction_end)


def socket_address(url: URL) -> str | None:
    """Where a SQLite database's worker listens: `<database file>-wake`, or None for an in-memory database."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    path = os.path.abspath(database) + "-wake"
    if len(os.fsencode(path)) <= _MAX_SOCKET_PATH:
        return path
    return "\0nexgenesis-nurture-" + hashlib.sha256(os.fsencode(path)).hexdigest()[:32]


def _datagram_socket() -> socket.socket:
    global _sender
    with _sender_lock:
        if _sender is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)  # a full receive queue drops the datagram instead of waiting
            _sender = sock
        return _sender


def notify(engine: Engine) -> None:
    """Tell a listening worker that work is due; never raises, never waits for the worker."""
    try:
        if engine.dialect.name == "postgresql":
            # Autocommit: one round trip, outside (after) the signup's own transaction.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql(f"NOTIFY {CHANNEL}")
        else:
            address = socket_address(engine.url)
            if address is not None:
                _datagram_socket().sendto(b"!", address)
    except (FileNotFoundError, ConnectionRefusedError, BlockingIOError):
        pass  # no worker listens right now, or one is already behind with wake-ups: its tick will do
    except Exception as exc:  # noqa: BLE001 - the commit is done; a lost wake-up only costs a tick
        log.debug("nurture wake-up not sent: %s", type(exc).__name__)


class Listener:
    """Calls `wake()` from a daemon thread each time due work is announced, until `close()`."""

    def __init__(self, engine: Engine, wake: Callable[[], None], poll_seconds: float = 1.0) -> None:
        self.engine = engine
        self.wake = wake
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._address: str | None = None
        #: Set once the listener receives (the LISTEN is registered or the socket bound).
        self.ready = threading.Event()

    @property
    def kind(self) -> str:
        """How wake-ups arrive: 'notify', 'socket' or 'none'."""
        if self.engine.dialect.name == "postgresql":
            return "notify"
        return "socket" if socket_address(self.engine.url) else "none"

    def start(self) -> bool:
        """Start listening; False when this database offers no wake-up (the worker then relies on its tick)."""
        if self.kind == "notify":
            target = self._listen_postgresql
        elif self.kind == "socket":
            if not self._bind():
                return False
            target = self._listen_socket
        else:
            return False
        self._thread = threading.Thread(target=target, name="nurture-wake", daemon=True)
        self._thread.start()
        return True

    def close(self) -> None:
        """Stop listening and remove the socket file this listener created."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_seconds + 5)
        if self._sock is not None:
            self._sock.close()
            if self._address and not self._address.startswith("\0"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._address)

    # -- SQLite: a unix datagram socket next to the database file --------------------------------------------
    def _bind(self) -> bool:
        address = socket_address(self.engine.url)
        assert address is not None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or not self._stale(address):
                sock.close()
                log.info("another worker receives this database's wake-ups; this one relies on its tick")
                return False
            # Left behind by a worker that was killed: nobody receives on it any more.
            os.unlink(address)
            sock.bind(address)
        sock.settimeout(self.poll_seconds)
        self._sock, self._address = sock, address
        self.ready.set()
        return True

    @staticmethod
    def _stale(address: str) -> bool:
        if address.startswith("\0"):
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(address)
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        finally:
            probe.close()
        return False

    def _listen_socket(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stop.is_set():
            try:
                sock.recv(16)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            # A burst of signups sends a burst of datagrams: one wake-up covers them all.
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                while sock.recv(16):
                    pass
            sock.settimeout(self.poll_seconds)
            self._call()

    # -- PostgreSQL: LISTEN on a connection of its own -----------------------------------------------------
    def _listen_postgresql(self) -> None:
        import psycopg  # the worker's listener only: the web side sends through the app's engine

        conninfo = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 1.0
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if self.ready.is_set():
                        self._call()  # back after a lost connection: anything announced meanwhile is due now
                    self.ready.set()
                    backoff = 1.0
                    while not self._stop.is_set():
                        # Each pass ends after poll_seconds without a notification, to see the stop flag.
                        if any(True for _ in conn.notifies(timeout=self.poll_seconds, stop_after=1)):
                            self._drain(conn)
                            self._call()
            except Exception as exc:  # noqa: BLE001 - a database restart must not end the worker; the tick goes on
                if self._stop.is_set():
                    return
                log.warning("wake-up listener lost its connection (%s); retrying in %gs", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    @staticmethod
    def _drain(conn: object) -> None:
        # Notifications that arrived with the first: one wake-up covers them all.
        for _ in conn.notifies(timeout=0):  # type: ignore[attr-defined]
            pass

    def _call(self) -> None:
        try:
            self.wake()
        except Exception as exc:  # noqa: BLE001 - a failed wake-up leaves the work to the tick
            log.warning("wake-up failed: %s", type(exc).__name__)

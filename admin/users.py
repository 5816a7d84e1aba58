"""Staff accounts: creating users and checking passwords (argon2id)."""

from __future__ import annotations

import contextlib
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.models import ROLES, User, new_session_token
from core.clock import now

MIN_PASSWORD_LENGTH = 12
_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown emails, so their logins take as long as real ones.

    Made on first use: hashing allocates argon2's 64 MiB, which every process would otherwise pay at import.
    """
    return _hasher.hash("not-a-real-password-0000")


class UserError(ValueError):
    """A user could not be created or changed; the message says why."""


def normalize_user_email(raw: str) -> str:
    """Lower-case, validated address (no DNS lookup); raises UserError."""
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise UserError(f"{raw!r} is not an email address: {exc}") from None


def check_password_strength(password: str) -> None:
    """Raise UserError when the password is too short."""
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise UserError(f"The password must have at least {MIN_PASSWORD_LENGTH} characters.")


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher.hash(password)


def find_user(session: Session, email: str) -> User | None:
    """The user with this email (case-insensitive), or None."""
    if "\x00" in email:  # no address holds NUL, and PostgreSQL refuses it in a query (a 500 on the login form)
        return None
    return session.scalars(select(User).where(func.lower(User.email) == email.strip().lower())).first()


def create_user(session: Session, email: str, password: str, role: str = "marketer") -> User:
    """Add a user; raises UserError for a bad address, weak password, unknown role or duplicate."""
    address = normalize_user_email(email)
    if role not in ROLES:
        raise UserError(f"{role!r} is not a role (use {' or '.join(ROLES)})")
    check_password_strength(password)
    if find_user(session, address) is not None:
        raise UserError(f"A user with the email {address} already exists.")
    user = User(
        email=address,
        password_hash=hash_password(password),
        role=role,
        active=True,
        created_at=now(),
        session_token=new_session_token(),
    )
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    """Replace a user's password and sign them out everywhere; raises UserError when it is too short."""
    check_password_strength(password)
    user.password_hash = hash_password(password)
    user.end_sessions()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, or None; rehashes outdated hashes."""
    user = find_user(session, email or "")
    if user is None or not user.active:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), password or "")
        return None
    try:
        _hasher.verify(user.password_hash, password or "")
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now()
    return user

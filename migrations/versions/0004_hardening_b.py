"""Repeat requests keep their own answers; stored addresses and names cleaned as capture now cleans them

Revision ID: 0004_hardening_b
Revises: 0003_hardening_a
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

import core.columns

revision = "0004_hardening_b"
down_revision = "0003_hardening_a"
branch_labels = None
depends_on = None

# The same characters as core.text.BIDI_CONTROLS (a migration keeps its own copy: the app's may change later).
BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("first_name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("last_name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("phone", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("details_accepted_at", core.columns.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("details_accepted_by_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch.create_foreign_key(
            "fk_submissions_details_accepted_by_id_users",
            "users",
            ["details_accepted_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
    _clean_stored_leads()


def _clean_stored_leads() -> None:
    """Internationalised domains in ASCII form, names without bidirectional overrides, as new signups are stored."""
    from email_validator import EmailNotValidError, validate_email

    conn = op.get_bind()
    leads = sa.table(
        "leads", sa.column("id"), sa.column("email"), sa.column("first_name"), sa.column("last_name")
    )
    rows = conn.execute(sa.select(leads.c.id, leads.c.email, leads.c.first_name, leads.c.last_name)).all()
    taken = {row.email for row in rows if row.email}
    for row in rows:
        changes = {}
        for name in ("first_name", "last_name"):
            value = getattr(row, name)
            if value and BIDI_CONTROLS.search(value):
                changes[name] = BIDI_CONTROLS.sub("", value).strip() or None
        if row.email and not row.email.isascii():
            try:
                ascii_email = validate_email(row.email, check_deliverability=False).ascii_email
            except EmailNotValidError:
                ascii_email = None
            # Left as it is when the ASCII form is another lead's: senders convert it when they send.
            if ascii_email and ascii_email.lower() not in taken:
                changes["email"] = ascii_email.lower()
                taken.add(changes["email"])
        if changes:
            conn.execute(leads.update().where(leads.c.id == row.id).values(**changes))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_constraint("fk_submissions_details_accepted_by_id_users", type_="foreignkey")
        batch.drop_column("details_accepted_by_id")
        batch.drop_column("details_accepted_at")
        batch.drop_column("phone")
        batch.drop_column("last_name")
        batch.drop_column("first_name")

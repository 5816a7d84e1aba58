"""Drop the single-column indexes a longer index already starts with; every signup wrote each of them

Revision ID: 0010_lean_indexes
Revises: 0009_admin_search
Create Date: 2026-11-29 15:00:00

leads(status), leads(source) and leads(landing_slug) are the first columns of ix_leads_status_created,
ix_leads_funnel and ix_leads_landing_created; submissions(landing_slug) of ix_submissions_utm;
enrollments(campaign_slug) of ix_enrollments_campaign_lead and enrollments(lead_id) of the unique
(lead_id, campaign_slug) constraint. Lookups use the longer index just as well.
"""

from __future__ import annotations

from alembic import op

revision = "0010_lean_indexes"
down_revision = "0009_admin_search"
branch_labels = None
depends_on = None

DROPPED = (
    ("leads", "ix_leads_status", "status"),
    ("leads", "ix_leads_source", "source"),
    ("leads", "ix_leads_landing_slug", "landing_slug"),
    ("submissions", "ix_submissions_landing_slug", "landing_slug"),
    ("enrollments", "ix_enrollments_campaign_slug", "campaign_slug"),
    ("enrollments", "ix_enrollments_lead_id", "lead_id"),
)


def upgrade() -> None:
    for table, name, _column in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for table, name, column in DROPPED:
        op.create_index(name, table, [column], unique=False)

"""The leads CSV: `flask leads export` and the admin's download give the same columns and cells, from one definition."""

from __future__ import annotations

import csv
import io

from admin.export import COLUMNS
from core.db import db


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _suppress(app, email: str, reason: str, clock) -> None:
    from mailer.suppression import suppress

    clock.advance(hours=1)
    with app.app_context(), db.write_transaction() as s:
        suppress(s, email, reason, "provider")


def test_cli_and_admin_csv_have_the_same_columns_and_cells(app, staff, runner, make_lead, clock):
    make_lead("sub@example.com", first_name="Sub", phone="+13035550142")
    make_lead("quiet@example.com", first_name="Quiet", consent=False)
    for email, reason in (("bye@example.com", "unsubscribe"), ("gone@example.com", "bounce")):
        make_lead(email, first_name=email.split("@")[0].title())
        _suppress(app, email, reason, clock)
    make_lead("spam@example.com", first_name="Spam")
    _suppress(app, "spam@example.com", "spamreport", clock)

    admin = staff.get("/admin/leads/export.csv?sort=oldest")
    cli = runner.invoke(args=["leads", "export"])
    assert cli.exit_code == 0, cli.output
    admin_text = admin.get_data(as_text=True)
    assert admin_text.splitlines()[0] == cli.stdout.splitlines()[0] == ",".join(COLUMNS)
    # Same leads in the same order (oldest first is id order here): byte for byte the same cells.
    assert _rows(admin_text) == _rows(cli.stdout)

    rows = {row["email"]: row for row in _rows(cli.stdout)}
    assert rows["sub@example.com"]["phone"] == "'+13035550142"  # quoted in both, never a formula
    statuses = {email: (row["email_status"], row["email_status_at_utc"]) for email, row in rows.items()}
    assert statuses == {
        "sub@example.com": ("subscribed", "2026-11-23 16:00:00"),
        "quiet@example.com": ("not subscribed", ""),
        "bye@example.com": ("unsubscribed", "2026-11-23 17:00:00"),
        "gone@example.com": ("bounced", "2026-11-23 18:00:00"),
        "spam@example.com": ("suppressed", "2026-11-23 19:00:00"),
    }


def test_csv_names_the_campaign_step_and_every_utm_field(app, staff, make_lead):
    from leads.services import capture_lead

    with app.app_context(), db.write_transaction() as s:
        capture_lead(
            s,
            {"email": "utm@example.com", "first_name": "Uma", "email_consent": True, "interest": "hip"},
            {
                "landing_slug": "stem-cell-therapy",
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": "spring",
                "utm_term": "knee pain",
                "utm_content": "ad-2",
            },
        )
    lead_id = make_lead("booked@example.com", first_name="Bea")
    staff.post(f"/admin/leads/{lead_id}/status", {"status": "booked"})

    rows = {r["first_name"]: r for r in _rows(staff.get("/admin/leads/export.csv").get_data(as_text=True))}
    uma = rows["Uma"]
    assert [uma[f"utm_{k}"] for k in ("source", "medium", "campaign", "term", "content")] == [
        "google",
        "cpc",
        "spring",
        "knee pain",
        "ad-2",
    ]
    # The welcome email is the first step; the lead now waits for it (the worker has not run).
    assert (uma["campaign"], uma["current_step"]) == ("stem-cell-therapy", "1. welcome")
    assert (rows["Bea"]["campaign"], rows["Bea"]["current_step"]) == ("stem-cell-therapy", "exited: status:booked")
    assert uma["created_at_utc"] == "2026-11-23 16:00:00"

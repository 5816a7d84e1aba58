"""`flask leads export` and `flask leads erase`, as an operator runs them."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from admin.export import COLUMNS as EXPORT_HEADER
from core.db import db
from leads.consent import CURRENT_EMAIL_CONSENT
from leads.models import Lead
from tests.support.factories import make_lead


def add_lead(app, email, first_name="Ann", consent=True, utm_source=None, **data):
    tags = {"utm_source": utm_source, "utm_medium": "cpc" if utm_source else None}
    return make_lead(app, email, consent=consent, first_name=first_name, **({"message": None} | tags | data))


def read_csv(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_export_writes_one_row_per_lead_with_latest_utm_and_consent(app, runner, tmp_path):
    first = add_lead(app, "ann@example.com", utm_source="facebook")
    add_lead(app, "ann@example.com", utm_source="newsletter", consent=False)
    add_lead(app, "bo@example.com", first_name="Bo", consent=False, last_name="Åström", phone="+13035550123")
    out = tmp_path / "leads.csv"
    result = runner.invoke(args=["leads", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    raw = out.read_bytes()
    rows = read_csv(raw.decode("utf-8"))
    assert list(rows[0].keys()) == list(EXPORT_HEADER)
    assert len(rows) == 2
    ann, bo = rows
    assert ann["id"] == str(first)
    assert ann["email"] == "ann@example.com"
    assert (ann["utm_source"], ann["utm_medium"]) == ("newsletter", "cpc")
    assert ann["source"] == "facebook"
    assert (ann["email_status"], ann["email_consent_version"]) == ("subscribed", CURRENT_EMAIL_CONSENT)
    assert ann["status"] == "new"
    assert ann["interest"] == "knee"
    assert ann["landing_page"] == "stem-cell-therapy"
    assert (bo["email_status"], bo["email_consent_version"]) == ("not subscribed", "")
    assert bo["last_name"] == "Åström"
    # A leading + would make a spreadsheet read the number as a formula, so it is quoted like any other.
    assert bo["phone"] == "'+13035550123"
    assert bo["created_at_utc"] == "2026-11-23 16:00:00"


def test_export_to_stdout_defuses_spreadsheet_formulas(app, runner):
    add_lead(
        app, "eve@example.com", first_name='=HYPERLINK("http://evil.example","x")', last_name="+1", utm_source="@src"
    )
    result = runner.invoke(args=["leads", "export"])
    assert result.exit_code == 0
    (row,) = read_csv(result.stdout)
    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["last_name"] == "'+1"
    assert row["utm_source"] == "'@src"


def test_export_with_no_leads_writes_the_header(runner):
    result = runner.invoke(args=["leads", "export"])
    assert result.exit_code == 0
    assert result.stdout.strip() == ",".join(EXPORT_HEADER)


def test_erase_asks_first_and_aborts_on_no(app, runner):
    lead_id = add_lead(app, "ann@example.com")
    result = runner.invoke(args=["leads", "erase", "Ann@Example.com"], input="n\n")
    assert result.exit_code != 0
    with app.app_context():
        assert db.session.get(Lead, lead_id).email == "ann@example.com"


@pytest.mark.parametrize("args", [["--yes"], []])
def test_erase_removes_personal_data(app, runner, args):
    lead_id = add_lead(app, "ann@example.com")
    result = runner.invoke(args=["leads", "erase", "ann@example.com", *args], input="y\n")
    assert result.exit_code == 0, result.output
    assert f"lead #{lead_id} erased" in result.output
    with app.app_context():
        lead = db.session.get(Lead, lead_id)
        assert (lead.email, lead.first_name, lead.erased_at is not None) == (None, None, True)
        assert db.session.scalars(select(Lead)).all() == [lead]
    again = runner.invoke(args=["leads", "erase", "ann@example.com", "--yes"])
    assert again.exit_code != 0
    assert "no lead with that email" in again.output


def test_erase_unknown_email_says_so_and_fails(runner):
    result = runner.invoke(args=["leads", "erase", "nobody@example.com", "--yes"])
    assert result.exit_code == 1
    assert "no lead with that email address" in result.output

"""Input a signed-in member of staff can type or paste that once made the admin answer 500 (mostly on PostgreSQL)."""

from __future__ import annotations

import pytest

from core.db import db
from leads.models import Note

NUL_URLS = [
    "/admin/leads?q=%00",
    "/admin/leads?q=ann%00",
    "/admin/leads?source=%00",
    "/admin/leads?campaign=%00",
    "/admin/leads/export.csv?q=%00",
    "/admin/leads/export.csv?source=x%00",
    "/admin/campaigns/stem-cell-therapy/steps/welcome/preview?lead=%00",
    "/admin/campaigns/stem-cell-therapy/steps/welcome/preview.html?lead=a%00@example.com",
    "/admin/deliveries?state=%00",
]


@pytest.mark.parametrize("url", NUL_URLS)
def test_a_nul_in_the_query_string_is_a_400(staff, make_lead, url):
    make_lead()
    response = staff.get(url)
    assert response.status_code == 400, response.status_code
    assert "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/leads?date_to=9999-12-31",
        "/admin/leads?date_from=9999-12-31",
        "/admin/leads?date_from=0001-01-01&date_to=0001-01-01",
        "/admin/leads/export.csv?date_to=9999-12-31",
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_a_400_with_the_reason(staff, make_lead, url):
    make_lead()
    response = staff.get(url)
    assert response.status_code == 400, response.status_code
    assert "is out of range" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/leads/99999999999999999999",
        "/admin/leads/9223372036854775808",
        "/admin/leads/99999999999999999999/export.json",
        "/admin/leads/99999999999999999999/erase",
        "/admin/users/99999999999999999999/password",
        "/admin/deliveries?page=99999999999999999999999",
        "/admin/deliveries?page=1000001",
    ],
)
def test_ids_and_pages_past_any_row_are_a_404(staff, url):
    assert staff.get(url).status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/admin/leads/99999999999999999999/notes",
        "/admin/leads/99999999999999999999/status",
        "/admin/deliveries/99999999999999999999/resolve",
        "/admin/webhooks/99999999999999999999/retry",
    ],
)
def test_posts_to_ids_past_any_row_are_a_404(staff, path):
    assert staff.post(path, {"body": "x", "status": "booked", "action": "sent", "confirm": "y"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/admin/campaigns/%00/history/0/rollback"),  # found by tests/fuzz: the slug reached PostgreSQL
        ("post", "/admin/campaigns/stem%00/pause"),
        ("post", "/admin/posts/%00/publish"),
        ("get", "/admin/campaigns/%00/edit"),
        ("get", "/admin/posts/x%00y/history"),
    ],
)
def test_a_nul_in_the_path_is_a_400(staff, method, path):
    response = staff.post(path, {}) if method == "post" else staff.get(path)
    assert response.status_code == 400, response.status_code
    assert "NUL" in response.get_data(as_text=True)


def test_a_note_with_a_nul_is_a_400_and_stores_nothing(staff, make_lead, app):
    lead_id = make_lead()
    response = staff.post(f"/admin/leads/{lead_id}/notes", {"body": "called\x00back"})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.query(Note).count() == 0


def test_the_largest_real_id_still_works(staff, make_lead):
    """The bound is the database's: 2**63 - 1 is a valid (missing) id, one more is no route at all."""
    assert staff.get(f"/admin/leads/{2**63 - 1}").status_code == 404
    lead_id = make_lead()
    assert staff.get(f"/admin/leads/{lead_id}").status_code == 200

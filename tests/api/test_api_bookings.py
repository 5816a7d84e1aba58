"""POST /api/bookings and the OpenAPI document."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db import db
from leads.models import Lead, StatusChange
from nurture.models import Enrollment
from tests.support.factories import make_lead

AUTH = {"Authorization": "Bearer test-booking-token"}


@pytest.fixture
def lead_id(app):
    return make_lead(app, "booker@example.com", first_name="Bea")


def test_booking_sets_status_and_ends_nurture(client, app, lead_id):
    response = client.post("/api/bookings", json={"email": "  Booker@Example.com "}, headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {"id": lead_id, "status": "booked", "changed": True}
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "booked"
        change = db.session.scalars(select(StatusChange)).one()
        assert (change.new_status, change.source) == ("booked", "api")
        assert db.session.scalars(select(Enrollment)).one().state == "exited"
    again = client.post("/api/bookings", json={"email": "booker@example.com"}, headers=AUTH)
    assert again.get_json() == {"id": lead_id, "status": "booked", "changed": False}


def test_unknown_email_is_404(client, lead_id):
    response = client.post("/api/bookings", json={"email": "stranger@example.com"}, headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["status"] == 404


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dGVzdC1ib29raW5nLXRva2Vu"},
        {"Authorization": "test-booking-token"},
        {"Authorization": "Bearer test-booking-token-and-more"},
    ],
)
def test_bad_or_missing_token_is_401_and_changes_nothing(client, app, lead_id, headers):
    response = client.post("/api/bookings", json={"email": "booker@example.com"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    with app.app_context():
        assert db.session.get(Lead, lead_id).status == "new"


def test_no_configured_token_refuses_everyone(make_config):
    from app import create_app

    closed = create_app(make_config(BOOKING_API_TOKEN=""))
    response = closed.test_client().post(
        "/api/bookings", json={"email": "x@example.com"}, headers={"Authorization": "Bearer "}
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"booker@example.com"',
        b"{}",
        b'{"email": 5}',
        b'{"email": ""}',
        b'{"email": null}',
        b"\xff\xfe",
        b"[" * 1000 + b"]" * 1000,
        b'{"email": "booker@example.com", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=lambda body: repr(body[:20]) + (f"..{len(body)}" if len(body) > 20 else ""),
)
def test_malformed_json_is_400(client, lead_id, body):
    response = client.post("/api/bookings", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "email" in response.get_json()["error"]


def test_invalid_address_is_404_not_500(client, lead_id):
    for email in ("not an email", "a@", "x" * 400, "<script>@example.com"):
        response = client.post("/api/bookings", json={"email": email}, headers=AUTH)
        assert response.status_code == 404, email


def test_no_csrf_needed_but_get_is_not_allowed(client):
    assert client.get("/api/bookings").status_code == 405


def test_openapi_document_describes_the_endpoint(client):
    doc = client.get("/api/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    operation = doc["paths"]["/api/bookings"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "404"}
    assert doc["components"]["securitySchemes"]["bookingToken"]["scheme"] == "bearer"
    assert (
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/BookingRequest"
    )

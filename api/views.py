"""POST /api/bookings: the booking system marks a lead booked, which ends its nurture."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from api.openapi import document
from core.db import db
from leads.models import Lead
from leads.services import change_status, find_lead

bp = Blueprint("api", __name__, url_prefix="/api")


def _error(status: int, message: str) -> tuple[Response, int]:
    response = jsonify(error=message, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response, status


def _authorized() -> bool:
    """Bearer token equal to BOOKING_API_TOKEN, compared in constant time; no token configured: nobody."""
    expected = current_app.config.get("BOOKING_API_TOKEN") or ""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), expected.encode("utf-8"))


@bp.post("/bookings")
def bookings() -> tuple[Response, int]:
    """Set the status of the lead with this email to booked (source 'api')."""
    if not _authorized():
        return _error(401, "Missing or wrong bearer token.")
    try:
        payload = request.get_json(silent=True, force=True)
    except RecursionError:  # "[[[[...]]]]" nested past the parser's depth; silent=True only covers ValueError
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("email"), str) or not payload["email"].strip():
        return _error(400, 'Send JSON like {"email": "jane@example.com"}.')
    email = payload["email"].strip()[:320]
    with db.write_transaction() as s:
        lead: Lead | None = find_lead(s, email)
        if lead is None or lead.erased_at:
            return _error(404, "No lead has this email.")
        # A patient is already further along than booked: keep the status, answer as a success.
        changed = False if lead.status == "patient" else change_status(s, lead, "booked", source="api")
        result = {"id": lead.id, "status": lead.status, "changed": changed}
    current_app.logger.info("booking via API: lead %s changed=%s", result["id"], changed)
    return jsonify(result), 200


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(document(current_app.config["SITE_URL"]))

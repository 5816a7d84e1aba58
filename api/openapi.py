"""The OpenAPI 3.1 document of /api, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
}


def document(server_url: str) -> dict[str, Any]:
    """The API description, with this deployment's URL as its server."""

    def error(description: str) -> dict[str, Any]:
        return {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "NexGenEsis lead API",
            "version": "1.0.0",
            "description": (
                "Lets the clinic's booking system tell the lead workspace that a lead booked a consultation. "
                "Booking ends the lead's email nurture at once."
            ),
        },
        "servers": [{"url": server_url}],
        "security": [{"bookingToken": []}],
        "paths": {
            "/api/bookings": {
                "post": {
                    "operationId": "recordBooking",
                    "summary": "Mark the lead with this email as booked",
                    "description": (
                        "Sets the lead's status to `booked` (recorded with source `api`) and ends its nurture "
                        "sequence. Repeating the call is harmless: `changed` is false the second time."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/BookingRequest"},
                                "example": {"email": "jane.doe@example.com"},
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The lead is booked.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/BookingResult"},
                                    "example": {"id": 42, "status": "booked", "changed": True},
                                }
                            },
                        },
                        "400": error('The body is not JSON of the form {"email": "..."}.'),
                        "401": error("The bearer token is missing or wrong."),
                        "404": error("No lead has this email."),
                        "413": error("The body is larger than the server accepts."),
                    },
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bookingToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The value of BOOKING_API_TOKEN in the server's configuration.",
                }
            },
            "schemas": {
                "BookingRequest": {
                    "type": "object",
                    "required": ["email"],
                    "properties": {"email": {"type": "string", "format": "email", "maxLength": 320}},
                    "additionalProperties": True,
                },
                "BookingResult": {
                    "type": "object",
                    "required": ["id", "status", "changed"],
                    "properties": {
                        "id": {"type": "integer", "description": "The lead's id in the workspace."},
                        "status": {"type": "string", "enum": ["booked", "patient"]},
                        "changed": {"type": "boolean", "description": "False when the lead was already booked."},
                    },
                },
                "Error": ERROR,
            },
        },
    }

"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
HSTS = "max-age=31536000; includeSubDomains"
# In this order on every response that does not set its own (the admin and a few views set a stricter one).
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
_HTTPS_HEADERS = (*SECURITY_HEADERS, ("Strict-Transport-Security", HSTS))


def set_security_headers(response: Response) -> Response:
    """Add CSP, nosniff, referrer, framing and permissions headers; HSTS only over HTTPS."""
    headers = response.headers
    # One pass over the names already set: Headers.setdefault scans them (and raises a KeyError) per header.
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 - Headers iterates (name, value) pairs
    wanted = _HTTPS_HEADERS if request.is_secure else SECURITY_HEADERS
    headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


def init_app(app: Flask) -> None:
    """Register the headers for every response, errors included."""
    app.after_request(set_security_headers)

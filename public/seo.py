"""What search engines and link previews read: canonical URLs and JSON-LD."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, current_app, request

from studio.definitions import Campaign


def absolute_url(path: str, **query: Any) -> str:
    """SITE_URL + path (+ the given query), for canonical links, sitemaps and feeds."""
    url = current_app.config["SITE_URL"] + path
    params = {key: value for key, value in query.items() if value is not None}
    return f"{url}?{urlencode(params)}" if params else url


def canonical_url(**query: Any) -> str:
    """The canonical URL of the current page: SITE_URL + path, never the visitor's UTM parameters."""
    return absolute_url(request.path, **query)


def clinic_jsonld(campaign: Campaign) -> dict[str, Any]:
    """schema.org MedicalClinic for a landing page."""
    config = current_app.config
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "MedicalClinic",
        "name": config["CLINIC_NAME"],
        "url": config["SITE_URL"] + "/",
        "description": campaign.page.description,
        "medicalSpecialty": "Musculoskeletal",
        "availableService": {
            "@type": "MedicalTherapy",
            "name": campaign.name,
            "url": absolute_url(f"/{campaign.slug}"),
        },
    }
    if config.get("CLINIC_PHONE"):
        data["telephone"] = config["CLINIC_PHONE"]
    if config.get("CLINIC_POSTAL_ADDRESS"):
        data["address"] = config["CLINIC_POSTAL_ADDRESS"]
    return data


def init_app(app: Flask) -> None:
    """Expose the helpers to templates."""
    app.jinja_env.globals.update(canonical_url=canonical_url, absolute_url=absolute_url, clinic_jsonld=clinic_jsonld)

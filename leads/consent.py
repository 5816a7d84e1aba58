"""Versioned consent wordings: the form shows the current one and each Consent row stores its version.

Never edit a wording in place: add a new version and point the CURRENT_* name at it, so every
stored consent still says exactly what the visitor saw.
"""

from __future__ import annotations

EMAIL_MARKETING = "email_marketing"
PRIVACY_NOTICE = "privacy_notice"
# Staff took an address off the suppression list; the row's version names the reason it was on it.
SUPPRESSION_LIFTED = "suppression_lifted"

CONSENT_WORDINGS: dict[str, str] = {
    "email-2026-11": (
        "Yes, email me information about regenerative treatments and my consultation. "
        "I can unsubscribe at any time with one click."
    ),
}
CURRENT_EMAIL_CONSENT = "email-2026-11"

PRIVACY_NOTICES: dict[str, str] = {
    "privacy-2026-11": (
        "I have read the privacy notice and agree that the clinic stores my details to answer this request."
    ),
}
PRIVACY_NOTICE_VERSION = "privacy-2026-11"


def email_consent_text(version: str = CURRENT_EMAIL_CONSENT) -> str:
    """The email consent wording of a version (the current one by default)."""
    return CONSENT_WORDINGS[version]


def privacy_notice_text(version: str = PRIVACY_NOTICE_VERSION) -> str:
    """The privacy acknowledgement wording of a version (the current one by default)."""
    return PRIVACY_NOTICES[version]

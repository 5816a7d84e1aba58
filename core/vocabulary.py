"""Words of the domain that several layers need: lead statuses and areas of interest.

Campaign definitions (studio) validate against them and leads store them, so they live below both.
"""

from __future__ import annotations

STATUSES = ("new", "contacted", "booked", "patient", "not_a_fit")
# Statuses that end a campaign's sequence unless the campaign names others.
DEFAULT_EXIT_STATUSES = ("booked", "patient", "not_a_fit")
INTERESTS = {
    "knee": "Knee",
    "hip": "Hip",
    "shoulder": "Shoulder",
    "spine": "Spine / back",
    "elbow": "Elbow / tendon",
    "ankle": "Ankle / foot",
    "other": "Other",
}

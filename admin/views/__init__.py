"""One module per admin screen; importing them registers their routes on the blueprint."""

from admin.views import (  # noqa: F401
    auth,
    campaigns,
    dashboard,
    deliveries,
    emails,
    leads,
    outbox,
    sequences,
    studio,
    suppressions,
    users,
)

"""One module per admin screen; importing them registers their routes on the blueprint."""

from admin.views import auth, campaigns, dashboard, deliveries, emails, leads, outbox, posts, suppressions, users  # noqa: F401

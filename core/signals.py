"""Domain events. Senders call them inside the caller's transaction; receivers add rows to the same session.

Each receiver gets keyword arguments only and must not commit: the sender owns the transaction,
so a failure anywhere rolls the whole change back.
"""

from __future__ import annotations

from blinker import Namespace

_events = Namespace()

#: A signup was stored. kwargs: session, lead, submission, campaign (or None), created (bool), consented (bool).
#: A new lead and the submission come as the rows just written (leads.services.StoredRow: columns, read only).
lead_captured = _events.signal("lead-captured")

#: A lead's status changed. kwargs: session, lead, old_status, new_status, source, user (or None).
lead_status_changed = _events.signal("lead-status-changed")

#: Leads withdrew consent or were suppressed. kwargs: session, lead_ids (list of int: the one lead of an
#: unsubscribe, the many of a provider's batch, or none for an address of no lead), reason, source.
#: Receivers load those leads in bulk: one bounce batch can name 10,000 of them.
lead_unsubscribed = _events.signal("lead-unsubscribed")

#: A lead confirmed a double opt-in. kwargs: session, lead, enrollment.
lead_confirmed = _events.signal("lead-confirmed")

#: A lead's personal data was erased from the leads tables. kwargs: session, lead, email (the address it had, or
#: None). Each package clears its own rows about the lead (in the session) and its copies kept outside the
#: database (files may go before the commit).
lead_erased = _events.signal("lead-erased")

#: A campaign version was published (or an old one published again). kwargs: session, old (the campaign that was
#: live, or None), new (the campaign now live), moment. Receivers adjust leads already in its sequence.
campaign_published = _events.signal("campaign-published")

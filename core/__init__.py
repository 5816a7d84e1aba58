"""Plumbing shared by every package: database, clock, extensions, domain signals."""

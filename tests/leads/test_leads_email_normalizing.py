"""Normalizing an address twice in one signup (the form, then prepare_signup) asks email_validator once."""

from __future__ import annotations

import pytest

from leads import services

ADDRESSES = ["Ann@Example.com", "user@exämple.com", "a.b+c@SUB.Example.CO.uk", " x@y.org ", "x@xn--exmple-cua.com"]


@pytest.mark.parametrize("raw", ADDRESSES)
def test_normalizing_a_normalized_address_gives_it_back(raw):
    services._normalized.email = None
    once = services.normalize_email(raw)
    services._normalized.email = None  # the full check again, not the remembered answer
    assert services.normalize_email(once) == once


@pytest.mark.parametrize("bad", ["bad@", "ÄNN@example.com", "", "ann@example.com\n@x"])
def test_the_remembered_address_lets_no_other_address_through(bad):
    services.normalize_email("ann@example.com")
    with pytest.raises(ValueError):  # noqa: PT011 - each refusal has its own wording
        services.normalize_email(bad)
    assert services.normalize_email("ann@example.com") == "ann@example.com"
    assert services.normalize_email("ANN@example.com") == "ann@example.com"

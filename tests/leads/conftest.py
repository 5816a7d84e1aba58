"""Fixtures for lead-capture tests."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from tests.support.content import CAMPAIGNS
from tests.support.forms import SLUG, Visitor


@pytest.fixture
def make_config(make_config, tmp_path_factory: pytest.TempPathFactory):
    """Serve only a copy of the stem cell campaign, so edits to other campaigns never break these tests."""
    root = tmp_path_factory.mktemp("campaigns")
    shutil.copytree(CAMPAIGNS / SLUG, root / SLUG)

    def factory(**overrides: object):
        return make_config(**{"CAMPAIGNS_DIR": str(root), **overrides})

    return factory


@pytest.fixture
def visitor(client: FlaskClient) -> Visitor:
    """A visitor on the stem cell therapy page."""
    return Visitor(client)


@pytest.fixture
def app_with(app: Flask, make_config) -> Callable[..., Flask]:
    """Build a second app on the same (already emptied) database with changed settings."""

    def factory(**overrides: object) -> Flask:
        return create_app(make_config(**overrides))

    return factory

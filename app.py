"""Application factory: config, then extensions, then blueprints and commands. Nothing else."""

from __future__ import annotations

import importlib
import logging
import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

import admin
import alerts
import api
import blog
import leads
import mailer
import nurture
import public
import studio
from config import Config
from core import clock, extensions, formatting
from core.db import db

# Models of every package must be imported before the metadata is used (migrations, create_all).
MODEL_MODULES = (
    "studio.models",
    "leads.models",
    "mailer.models",
    "nurture.models",
    "admin.models",
    "public.models",
    "alerts.models",
)


def load_models() -> None:
    """Import every model module so the shared metadata knows all tables."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def _secret_key(instance: Path) -> str:
    """A development key kept in instance/ so sessions survive restarts; production sets SECRET_KEY."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def create_app(config: Config | None = None) -> Flask:
    """Build the app from `config` (default: the environment)."""
    config = config or Config()
    app = Flask(__name__, instance_path=config.INSTANCE_PATH, static_folder="static")
    app.config.from_object(config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(Path(app.instance_path))
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if app.config["TRUSTED_PROXIES"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"], x_proto=1, x_host=1)

    load_models()
    clock.init_app(app)
    db.init_app(app)
    extensions.init_app(app)
    formatting.init_app(app)
    studio.init_app(app)

    public.init_app(app)
    leads.init_app(app)
    nurture.init_app(app)
    mailer.init_app(app)
    blog.init_app(app)
    admin.init_app(app)
    api.init_app(app)
    alerts.init_app(app)
    return app

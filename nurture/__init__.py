"""Nurture: enrollment, the worker that sends each step once, its composers, /confirm and the worker's health."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from mailer.base import register_composer
from nurture import cli, composers, enrollment, health, replan, views


def init_app(app: Flask) -> None:
    """Register the /confirm view, the commands, the signal receivers, composers and health checks."""
    app.register_blueprint(views.bp)
    cli.init_app(app)
    enrollment.connect()
    replan.connect()
    register_composer(app, "nurture", composers.compose_nurture_delivery)
    register_composer(app, "confirmation", composers.compose_confirmation)
    register_composer(app, "reminder", composers.compose_reminder)
    checks = app.extensions.setdefault("health_checks", {})
    checks["worker"] = health.worker_probe
    checks["provider"] = health.provider_probe


def register_worker_job(app: Flask, job_id: str, seconds: float, job: Callable[[], object]) -> None:
    """Have `flask nurture run` call `job` (in an app context) every `seconds`, beside the ticks: in a thread of its
    own, so a slow job never holds up sending (work as light as a tick's belongs in app.extensions["tick_tasks"])."""
    app.extensions.setdefault("worker_jobs", {})[job_id] = (seconds, job)

"""Configuration read from the environment; every variable is listed in the README."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A variable holds a value the app cannot use."""


class _Env:
    """Typed reads from an environment mapping, naming the variable when a value is wrong."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def get(self, name: str, default: str = "") -> str:
        value = self.env.get(name)
        return default if value is None or value.strip() == "" else value.strip()

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if not value:
            return default
        if value.lower() in {"1", "true", "yes", "on"}:
            return True
        if value.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name}: {value!r} is not a yes/no value (use 1 or 0)")

    def number(self, name: str, default: float, kind: type = float) -> float:
        value = self.get(name)
        if not value:
            return default
        try:
            return kind(value)
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a number") from None

    def color(self, name: str, default: str) -> str:
        value = self.get(name, default)
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", value):
            raise ConfigError(f"{name}: {value!r} is not a colour (use six hex digits, like #0b5d57)")
        return value.lower()

    def list(self, name: str) -> list[str]:
        return [item.strip() for item in self.get(name).split(",") if item.strip()]


class Config:
    """Settings for a running app; each attribute comes from the variable of the same name."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        e = _Env(os.environ if env is None else env)
        instance = Path(e.get("INSTANCE_PATH", str(BASE_DIR / "instance")))
        self.INSTANCE_PATH = str(instance)
        self.SECRET_KEY = e.get("SECRET_KEY", "")
        self.DATABASE_URL = e.get("DATABASE_URL", f"sqlite:///{instance / 'app.db'}")
        self.SITE_URL = e.get("SITE_URL", "http://127.0.0.1:5000").rstrip("/")
        self.CLINIC_NAME = e.get("CLINIC_NAME", "NexGenEsis Healthcare")
        self.CLINIC_POSTAL_ADDRESS = e.get("CLINIC_POSTAL_ADDRESS", "")
        self.CLINIC_PHONE = e.get("CLINIC_PHONE", "")
        self.CLINIC_TIMEZONE = e.get("CLINIC_TIMEZONE", "America/Denver")
        # Empty: the site's built-in wording. The admin's site settings override these and the four above.
        self.HOME_HEADLINE = e.get("HOME_HEADLINE", "")
        self.HOME_INTRO = e.get("HOME_INTRO", "")
        self.PRIVACY_NOTICE = e.get("PRIVACY_NOTICE", "")
        self.MEDICAL_DISCLAIMER = e.get("MEDICAL_DISCLAIMER", "")
        self.CAMPAIGNS_DIR = e.get("CAMPAIGNS_DIR", str(BASE_DIR / "campaigns"))
        # How often each process asks the database whether a campaign was published (one tiny query).
        self.CONTENT_REFRESH_SECONDS = e.number("CONTENT_REFRESH_SECONDS", default=2.0)
        self.BLOG_DIR = e.get("BLOG_DIR", str(BASE_DIR / "content" / "blog"))
        # The dashboard's figures read up to a million leads: stored for every process (admin.snapshots), the
        # nurture worker recomputes those in use once they are this old (0: every view computes them).
        self.DASHBOARD_CACHE_SECONDS = e.number("DASHBOARD_CACHE_SECONDS", default=60.0)
        self.DEFAULT_PHONE_REGION = e.get("DEFAULT_PHONE_REGION", "US").upper()
        # The brand in emails (site settings move into the admin later): a logo image and one colour.
        self.BRAND_COLOR = e.color("BRAND_COLOR", "#0b5d57")
        self.BRAND_LOGO_URL = e.get("BRAND_LOGO_URL", "")
        self.BLOG_PER_PAGE = e.number("BLOG_PER_PAGE", kind=int, default=10)
        # Page views are counted in memory and written in batches, so counting never slows a page.
        self.PAGEVIEW_FLUSH_EVERY = e.number("PAGEVIEW_FLUSH_EVERY", kind=int, default=50)
        self.PAGEVIEW_FLUSH_SECONDS = e.number("PAGEVIEW_FLUSH_SECONDS", default=5.0)

        # Forms and spam protection.
        self.WTF_CSRF_TIME_LIMIT = e.number("WTF_CSRF_TIME_LIMIT", kind=int, default=24 * 3600)
        self.FORM_MIN_FILL_SECONDS = e.number("FORM_MIN_FILL_SECONDS", default=3.0)
        self.SIGNUP_RATE_LIMIT = e.get("SIGNUP_RATE_LIMIT", "5/minute;30/hour")
        self.LOGIN_RATE_LIMIT = e.get("LOGIN_RATE_LIMIT", "10/minute;50/hour")
        self.LOGIN_ACCOUNT_RATE_LIMIT = e.get("LOGIN_ACCOUNT_RATE_LIMIT", "30/hour")
        self.RATELIMIT_STORAGE_URI = e.get("RATELIMIT_STORAGE_URI", "memory://")
        self.RATELIMIT_ENABLED = e.bool("RATELIMIT_ENABLED", True)
        self.RATELIMIT_KEY_PREFIX = e.get("RATELIMIT_KEY_PREFIX", "")
        self.TRUSTED_PROXIES = e.number("TRUSTED_PROXIES", kind=int, default=0)
        self.MAX_CONTENT_LENGTH = e.number("MAX_CONTENT_LENGTH", kind=int, default=64 * 1024)

        # Email.
        self.MAIL_BACKEND = e.get("MAIL_BACKEND", "outbox")
        self.MAIL_FROM = e.get("MAIL_FROM", "care@nexgenesis.example")
        self.MAIL_FROM_NAME = e.get("MAIL_FROM_NAME", self.CLINIC_NAME)
        self.MAIL_REPLY_TO = e.get("MAIL_REPLY_TO", self.MAIL_FROM)
        self.OUTBOX_DIR = e.get("OUTBOX_DIR", str(instance / "outbox"))
        self.SENDGRID_API_KEY = e.get("SENDGRID_API_KEY", "")
        self.SENDGRID_API_HOST = e.get("SENDGRID_API_HOST", "https://api.sendgrid.com")
        self.SENDGRID_TIMEOUT = e.number("SENDGRID_TIMEOUT", default=10.0)
        self.SENDGRID_WEBHOOK_PUBLIC_KEY = e.get("SENDGRID_WEBHOOK_PUBLIC_KEY", "")

        # Nurture worker.
        self.NURTURE_TICK_SECONDS = e.number("NURTURE_TICK_SECONDS", default=5.0)
        # The worker also runs at once when a signup records due work (NOTIFY or a local socket); 0 leaves the tick.
        self.NURTURE_WAKE = e.bool("NURTURE_WAKE", default=True)
        self.NURTURE_BATCH_SIZE = e.number("NURTURE_BATCH_SIZE", kind=int, default=100)
        self.NURTURE_LEASE_SECONDS = e.number("NURTURE_LEASE_SECONDS", kind=int, default=120)
        self.NURTURE_TIME_SCALE = e.number("NURTURE_TIME_SCALE", default=1.0)
        self.NURTURE_MAX_ATTEMPTS = e.number("NURTURE_MAX_ATTEMPTS", kind=int, default=5)
        self.NURTURE_CONCURRENCY = e.number("NURTURE_CONCURRENCY", kind=int, default=8)
        if self.NURTURE_CONCURRENCY < 1:
            raise ConfigError(
                f"NURTURE_CONCURRENCY: {self.NURTURE_CONCURRENCY} must be at least 1 (1 sends one at a time)"
            )

        # Integrations.
        self.BOOKING_API_TOKEN = e.get("BOOKING_API_TOKEN", "")
        self.INTAKE_EMAILS = e.list("INTAKE_EMAILS")
        # Staff addresses a campaign's test sends may go to, besides the signed-in user's own (never a lead's).
        self.TEST_SEND_EMAILS = [address.lower() for address in e.list("TEST_SEND_EMAILS")]
        self.INTAKE_DIGEST = e.get("INTAKE_DIGEST", "off")
        self.INTAKE_DIGEST_TIME = e.get("INTAKE_DIGEST_TIME", "08:00")
        self.WEBHOOK_URLS = e.list("WEBHOOK_URLS")
        self.WEBHOOK_SECRET = e.get("WEBHOOK_SECRET", "")

        self.SESSION_COOKIE_SECURE = e.bool("SESSION_COOKIE_SECURE", self.SITE_URL.startswith("https://"))
        self.SESSION_COOKIE_HTTPONLY = True
        self.SESSION_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_HTTPONLY = True
        self.REMEMBER_COOKIE_SAMESITE = "Lax"
        self.REMEMBER_COOKIE_SECURE = self.SESSION_COOKIE_SECURE
        self.LOG_LEVEL = e.get("LOG_LEVEL", "INFO")
        self.TESTING = False


class TestConfig(Config):
    """Settings for the test suite: a throwaway instance folder, no real network, fast forms."""

    def __init__(self, instance_path: str, database_url: str) -> None:
        super().__init__({"INSTANCE_PATH": instance_path})
        self.INSTANCE_PATH = instance_path
        self.TESTING = True
        self.SECRET_KEY = "test-secret-key"  # noqa: S105
        self.DATABASE_URL = database_url
        self.OUTBOX_DIR = str(Path(instance_path) / "outbox")
        self.CLINIC_POSTAL_ADDRESS = "NexGenEsis Healthcare, 100 Example Ave, Denver, CO 80202, USA"
        self.FORM_MIN_FILL_SECONDS = 0.0
        self.MAIL_BACKEND = "outbox"
        self.BOOKING_API_TOKEN = "test-booking-token"  # noqa: S105
        self.RATELIMIT_STORAGE_URI = "memory://"
        # Fixture copies of the campaigns and posts: marketing can edit campaigns/ and content/blog/ freely
        # (tests/studio checks that the shipped ones validate).
        self.CAMPAIGNS_DIR = str(BASE_DIR / "tests" / "fixtures" / "campaigns")
        self.BLOG_DIR = str(BASE_DIR / "tests" / "fixtures" / "blog")
        # Tests compare the dashboard with what they just stored; the snapshots have their own tests.
        self.DASHBOARD_CACHE_SECONDS = 0.0

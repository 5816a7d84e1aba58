"""The blog: the published posts (studio's store) served at /blog/, per tag, and as an Atom feed."""

from __future__ import annotations

from flask import Flask

from blog.cli import blog_cli
from blog.seo import post_jsonld
from blog.views import bp


def init_app(app: Flask) -> None:
    """Register the blueprint, `flask blog` and the post's JSON-LD."""
    app.register_blueprint(bp)
    app.cli.add_command(blog_cli)
    app.jinja_env.globals["post_jsonld"] = post_jsonld

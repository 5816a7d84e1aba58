"""The blog: posts from content/blog/*.md served at /blog/ and /blog/<slug>."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from blog.loader import Blog, BlogErrors, load_posts
from blog.seo import post_jsonld
from blog.views import bp


def init_app(app: Flask) -> None:
    """Load every post once (refusing to start on a broken file), register the blueprint and the post's JSON-LD."""
    posts, problems = load_posts(app.config["BLOG_DIR"], Path(app.static_folder or "static"))
    if problems:
        raise BlogErrors(problems)
    app.extensions["blog"] = Blog(posts)
    app.register_blueprint(bp)
    app.cli.add_command(validate_command)
    app.jinja_env.globals["post_jsonld"] = post_jsonld


@click.command("blog-validate")
@with_appcontext
def validate_command() -> None:
    """Check every post file in BLOG_DIR and list the problems found."""
    posts, problems = load_posts(current_app.config["BLOG_DIR"], Path(current_app.static_folder or "static"))
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(1)
    click.echo(f"{len(posts)} posts OK")

"""What search engines read of a post: its schema.org BlogPosting."""

from __future__ import annotations

from typing import Any

from flask import current_app

from blog.loader import Post
from public.seo import absolute_url


def post_jsonld(post: Post) -> dict[str, Any]:
    """schema.org BlogPosting for a post."""
    config = current_app.config
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "BlogPosting",
        "headline": post.title,
        "description": post.description,
        "datePublished": post.date.isoformat(),
        "dateModified": post.date.isoformat(),
        "author": {"@type": "Person", "name": post.author},
        "publisher": {"@type": "MedicalClinic", "name": config["CLINIC_NAME"], "url": config["SITE_URL"] + "/"},
        "mainEntityOfPage": absolute_url(post.path),
        "keywords": ", ".join(post.tags),
        "wordCount": post.words,
    }
    if post.image is not None:
        data["image"] = absolute_url(post.image.url if post.image.uploaded else f"/static/{post.image.src}")
    return data

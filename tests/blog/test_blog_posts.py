"""The blog: published posts, newest first, paginated, rendered safely, each ending with a call to book; post files
checked with the same words as the admin."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from blog.loader import load_posts
from tests.support.content import POSTS, REPO
from tests.support.database import fresh_app

GOOD = """---
title: {title}
description: A post written for the tests, long enough to be a description.
date: {date}
author: Test Author
tags: [knee]
---
Body of {title}.
"""


def write_posts(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    slugs = []
    start = date(2025, 1, 1)
    for index in range(count):
        slug = f"post-{index:02d}"
        text = GOOD.format(title=f"Post {index:02d}", date=(start + timedelta(days=index)).isoformat())
        (folder / f"{slug}.md").write_text(text)
        slugs.append(slug)
    return slugs


def blog_config(make_config, tmp_path: Path, posts: Path, **overrides):
    """Config serving `posts`, with one campaign whose emails link to no post (campaigns check their links)."""
    campaign = tmp_path / "campaigns" / "stem-cell-therapy"
    campaign.mkdir(parents=True, exist_ok=True)
    (campaign / "campaign.yaml").write_text("slug: stem-cell-therapy\nname: Stem cell therapy\n")
    (campaign / "page.md").write_text("---\ntitle: T\ndescription: D\nheadline: H\n---\nText\n")
    return make_config(BLOG_DIR=str(posts), CAMPAIGNS_DIR=str(tmp_path / "campaigns"), **overrides)


@pytest.fixture
def paged_client(make_config, tmp_path):
    write_posts(tmp_path / "posts", 7)
    for app in fresh_app(blog_config(make_config, tmp_path, tmp_path / "posts", BLOG_PER_PAGE=3)):
        yield app.test_client()


def post_links(response) -> list[str]:
    return re.findall(r'<h2><a href="/blog/([a-z0-9-]+)">', response.get_data(as_text=True))


def test_index_is_newest_first_and_paginated(paged_client):
    first = paged_client.get("/blog/")
    assert first.status_code == 200
    assert post_links(first) == ["post-06", "post-05", "post-04"]
    assert 'href="/blog/?page=2"' in first.get_data(as_text=True)
    assert post_links(paged_client.get("/blog/?page=2")) == ["post-03", "post-02", "post-01"]
    last = paged_client.get("/blog/?page=3")
    assert post_links(last) == ["post-00"]
    html = last.get_data(as_text=True)
    assert "Older posts" not in html
    assert 'href="/blog/?page=2"' in html
    assert '<link rel="canonical" href="http://127.0.0.1:5000/blog/?page=3">' in html
    assert "(page 3)" in html  # each page has its own title


@pytest.mark.parametrize("page", ["0", "4", "-1", "abc", "1.5", "", "99999999999", "²"])
def test_bad_page_numbers_are_404(paged_client, page):
    assert paged_client.get(f"/blog/?page={page}").status_code == 404


def test_blog_without_slash_redirects(client):
    response = client.get("/blog")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/blog/")


def test_posts_load_and_read_like_articles():
    posts, problems = load_posts(POSTS, REPO / "static")
    assert problems == []
    slugs = {post.slug for post in posts}
    assert {
        "regenerative-medicine-vs-conventional-treatments",
        "what-happens-during-a-stem-cell-procedure",
        "stem-cells-or-prp-which-fits-your-injury",
    } <= slugs
    for post in posts:
        assert 500 <= post.words <= 950, (post.slug, post.words)


def test_post_page_ends_with_a_call_to_book_and_a_disclaimer(client):
    response = client.get("/blog/what-happens-during-a-stem-cell-procedure")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "not medical advice" in html[html.index("<article") :]
    cta = html.index('class="cta"')
    assert 'href="/stem-cell-therapy#signup"' in html[cta:]
    assert "Book a free consultation" in html[cta:]
    # The post's own treatment decides where the call to action points.
    assert 'href="/prp-knee-osteoarthritis#signup"' in client.get("/blog/stem-cells-or-prp-which-fits-your-injury").text


def test_unknown_post_is_the_404_page(client):
    response = client.get("/blog/no-such-post")
    assert response.status_code == 404
    assert "Page not found" in response.text


def test_raw_html_in_a_post_is_shown_as_text(make_config, tmp_path):
    folder = tmp_path / "posts"
    folder.mkdir()
    raw = '\n<script>alert("x")</script>\n\n[x](javascript:alert(1))\n'
    body = GOOD.format(title="Escaping", date="2025-05-05") + raw
    (folder / "escaping.md").write_text(body)
    for app in fresh_app(blog_config(make_config, tmp_path, folder)):
        html = app.test_client().get("/blog/escaping").text
        assert '<script>alert("x")' not in html
        assert "&lt;script&gt;" in html
        assert 'href="javascript:' not in html


BROKEN = {
    "no-title.md": ("---\ndescription: d\ndate: 2025-01-01\nauthor: A\n---\nText\n", "no-title.md: title: is required"),
    "bad-date.md": (
        "---\ntitle: T\ndescription: d\ndate: 2025-13-01\nauthor: A\n---\nText\n",
        "bad-date.md: date: '2025-13-01' is not a date (use YYYY-MM-DD)",
    ),
    "bad-tags.md": (
        "---\ntitle: T\ndescription: d\ndate: 2025-01-01\nauthor: A\ntags: {a: 1}\n---\nText\n",
        "bad-tags.md: tags: must be a list",
    ),
    "typo.md": (
        "---\ntitle: T\ndescription: d\ndate: 2025-01-01\nauthor: A\nauthr: B\n---\nText\n",
        "typo.md: authr: is not a field posts know",
    ),
    "bad-image.md": (
        "---\ntitle: T\ndescription: d\ndate: 2025-01-01\nauthor: A\nimage: {src: img/none.svg, alt: x}\n---\nText\n",
        "bad-image.md: image.src: file 'img/none.svg' not found under static/",
    ),
    "unclosed.md": ("---\ntitle: T\n", "unclosed.md: front matter has no closing '---' line"),
    "Bad_Name.md": (GOOD.format(title="T", date="2025-01-01"), "Bad_Name.md: file name must be lowercase"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_post_names_the_file_and_the_field(tmp_path, name):
    text, expected = BROKEN[name]
    (tmp_path / name).write_text(text)
    posts, problems = load_posts(tmp_path, REPO / "static")
    assert posts == []
    assert any(expected in problem for problem in problems), problems


def test_importing_a_broken_post_names_file_and_field_and_stores_nothing(app, runner, tmp_path):
    (tmp_path / "posts").mkdir()
    (tmp_path / "posts" / "a-good-one.md").write_text(GOOD.format(title="Good", date="2025-01-01"))
    (tmp_path / "posts" / "broken.md").write_text("---\ntitle: T\ndate: someday\nauthor: A\n---\nText\n")
    result = runner.invoke(args=["blog", "import", str(tmp_path / "posts"), "--publish"])
    assert result.exit_code == 1
    assert "broken.md: description: is required" in result.output
    assert "broken.md: date: 'someday' is not a date" in result.output
    assert "nothing was imported" in result.output
    assert app.test_client().get("/blog/a-good-one").status_code == 404


def test_blog_validate_command_checks_the_posts(runner):
    result = runner.invoke(args=["blog", "validate"])
    assert result.exit_code == 0
    assert "posts OK" in result.output


def test_post_images_are_sized_and_lazy_loaded(client):
    html = client.get("/blog/what-happens-during-a-stem-cell-procedure").text
    img = re.search(r"<img [^>]*>", html).group(0)
    assert 'width="720"' in img
    assert 'height="200"' in img
    assert 'loading="lazy"' in img
    assert 'alt="The four steps' in img
    assert re.search(r'src="/static/img/stem-cell-procedure-steps\.svg\?v=[0-9a-f]{12}"', img)

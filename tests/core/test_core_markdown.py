"""The one `blog:` link syntax: what validation lists and what composing rewrites are the same links."""

from __future__ import annotations

from core.markdown import blog_links, render, rewrite_blog_links


def test_blog_links_lists_each_slug_once():
    markdown = "[a](blog:one) and [b](blog:two), again [c](blog:one)\n\n[ref]: blog:three\n"
    assert blog_links(markdown) == ["one", "two", "three"]


def test_a_malformed_post_name_is_listed_for_validation_and_never_rewritten():
    markdown = "[a](blog:Old_Post) and [b](blog:good-one#part)"
    assert blog_links(markdown) == ["Old_Post", "good-one"]
    rewritten = rewrite_blog_links(markdown, lambda slug: f"https://site.example/blog/{slug}?t=1")
    assert rewritten == "[a](blog:Old_Post) and [b](https://site.example/blog/good-one?t=1#part)"


def test_the_word_blog_in_text_is_not_a_link():
    assert blog_links("Read our blog: it is new. See blog:this too.") == []


def test_raw_html_is_shown_as_text():
    assert "<script>" not in render("<script>alert(1)</script>")

"""Blog posts as the blog reads them: the post's form and checks live in studio.posts (campaigns check their
`blog:` links against the same store), the posts live now in studio.post_registry."""

from __future__ import annotations

from studio.post_registry import Blog, blog
from studio.posts import BlogErrors, Post, PostImage, load_post, load_posts

__all__ = ["Blog", "BlogErrors", "Post", "PostImage", "blog", "load_post", "load_posts"]

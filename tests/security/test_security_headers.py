"""Security headers on public pages, error pages and static files; HSTS only over HTTPS."""

from __future__ import annotations

from pathlib import Path

from tests.support.forms import SLUG

SAFE_REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def _csp(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def _public_urls(app) -> list[str]:
    """Every argument-free public GET route, the pages behind a slug, and errors a visitor can cause."""
    urls = {
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or set())
        and not rule.arguments
        and not rule.rule.startswith(("/admin", "/api/", "/webhooks/"))
    }
    urls |= {f"/{SLUG}", f"/{SLUG}/thank-you", "/no-such-page", "/blog/no-such-post"}
    urls |= {"/unsubscribe/not-a-token", "/confirm/not-a-token"}
    blog_dir = Path(app.config["BLOG_DIR"])
    urls |= {f"/blog/{post.stem}" for post in sorted(blog_dir.glob("*.md"))[:2]}
    return sorted(urls)


def _static_file(app) -> str:
    files = sorted(p for p in Path(app.static_folder).rglob("*") if p.is_file())
    assert files, "the app ships static files (CSS, images): none found"
    return "/static/" + files[0].relative_to(app.static_folder).as_posix()


def assert_security_headers(response, where: str, frame_ancestors: tuple[str, ...] = ("'none'",)) -> None:
    """The headers every response must carry."""
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", f"{where}: no nosniff"
    assert headers.get("Referrer-Policy") in SAFE_REFERRER_POLICIES, (
        f"{where}: Referrer-Policy {headers.get('Referrer-Policy')!r}"
    )
    csp = headers.get("Content-Security-Policy")
    assert csp, f"{where}: no Content-Security-Policy"
    directives = _csp(csp)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts is not None, f"{where}: CSP limits no scripts: {csp}"
    for unsafe in ("'unsafe-inline'", "'unsafe-eval'", "*"):
        assert unsafe not in scripts, f"{where}: script-src allows {unsafe}: {csp}"
    assert directives.get("frame-ancestors", [None])[0] in frame_ancestors, f"{where}: frame-ancestors: {csp}"
    assert directives.get("object-src", directives.get("default-src")) in (["'none'"], ["'self'"]), f"{where}: {csp}"


def test_public_pages_and_errors_carry_the_headers(app, client):
    seen = []
    for url in _public_urls(app):
        response = client.get(url)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        assert_security_headers(response, f"GET {url} ({response.status_code})")
        assert "Strict-Transport-Security" not in response.headers, f"{url}: HSTS over plain HTTP"
        seen.append(response.status_code)
    assert 200 in seen
    assert 404 in seen


def test_error_responses_carry_the_headers(app, client):
    cases = [
        client.post(f"/{SLUG}", data={"first_name": "No token"}),  # 400: CSRF
        client.get("/webhooks/sendgrid"),  # 405, or 404 before the webhook exists
        client.post(
            f"/{SLUG}",
            data="x" * (app.config["MAX_CONTENT_LENGTH"] + 10),
            content_type="application/x-www-form-urlencoded",
        ),  # 413 or 400
        client.get("/%ff%fe"),  # undecodable path
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.status_code
        assert_security_headers(response, f"error {response.status_code}")


def test_unexpected_errors_carry_the_headers(app):
    @app.get("/__test_boom")
    def boom():
        raise RuntimeError("internal-detail-1234")

    response = app.test_client().get("/__test_boom")
    assert response.status_code == 500
    assert "internal-detail-1234" not in response.get_data(as_text=True)
    assert_security_headers(response, "500 page")


def test_static_files_carry_the_headers(app, client):
    url = _static_file(app)
    response = client.get(url)
    assert response.status_code == 200
    assert_security_headers(response, f"static {url}")
    response.close()


def test_hsts_only_over_https(app, client):
    page = f"/{SLUG}"
    plain = client.get(page)
    secure = client.get(page, base_url="https://clinic.example")
    assert "Strict-Transport-Security" not in plain.headers
    hsts = secure.headers.get("Strict-Transport-Security", "")
    assert "max-age=" in hsts, "no HSTS over HTTPS"
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= 180 * 24 * 3600, hsts
    assert_security_headers(secure, "https page")


def test_admin_login_page_carries_the_headers(client):
    response = client.get("/admin/login")
    assert response.status_code == 200
    # The admin frames its own email previews, so it may allow 'self' but never other sites.
    assert_security_headers(response, "admin login", frame_ancestors=("'none'", "'self'"))
    assert "no-store" in response.headers.get("Cache-Control", "")


def test_each_header_is_sent_once_and_a_views_own_value_wins(app):
    """Headers are added in one pass; a view's own header (in any letter case) is never doubled or replaced."""

    @app.get("/__test_own_policy")
    def own_policy():
        return "ok", 200, {"content-security-policy": "default-src 'none'", "X-FRAME-OPTIONS": "SAMEORIGIN"}

    client = app.test_client()
    for url, secure in ((f"/{SLUG}", False), (f"/{SLUG}", True), ("/__test_own_policy", False)):
        response = client.get(url, base_url="https://clinic.example" if secure else "http://localhost")
        names = [name.lower() for name, _ in response.headers.items()]
        for name in (
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
            "permissions-policy",
            "cross-origin-opener-policy",
        ):
            assert names.count(name) == 1, f"{url}: {name} sent {names.count(name)} times"
        assert names.count("strict-transport-security") == (1 if secure else 0), url
    own = client.get("/__test_own_policy").headers
    assert own["Content-Security-Policy"] == "default-src 'none'"
    assert own["X-Frame-Options"] == "SAMEORIGIN"
    assert own["Permissions-Policy"] == "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

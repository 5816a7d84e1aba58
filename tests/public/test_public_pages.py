"""Public pages: titles, descriptions, canonical links, Open Graph, JSON-LD, sitemap, robots, 404, headers."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import pytest

from studio.registry import registry

SITE = "http://127.0.0.1:5000"
LANDINGS = ["/stem-cell-therapy", "/prp-knee-osteoarthritis"]
POSTS = [
    "/blog/regenerative-medicine-vs-conventional-treatments",
    "/blog/what-happens-during-a-stem-cell-procedure",
    "/blog/stem-cells-or-prp-which-fits-your-injury",
]
PAGES = ["/", "/privacy", "/blog/", *LANDINGS, *POSTS]


def registry_of(app):
    """The app's live campaigns."""
    with app.app_context():
        return registry()


class Head(HTMLParser):
    """Collects what search engines read from a page: title, metas, links, JSON-LD, ids, inline styles."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.jsonld: list[dict] = []
        self.scripts: list[dict] = []
        self.style_attrs = 0
        self.hrefs: list[str] = []
        self._in_title = False
        self._in_jsonld = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "style" in attrs:
            self.style_attrs += 1
        if tag == "title":
            self._in_title = True
        elif tag == "meta":
            key = attrs.get("name") or attrs.get("property")
            if key:
                self.meta[key] = attrs.get("content", "")
        elif tag == "link":
            self.links[attrs.get("rel", "")] = attrs.get("href", "")
        elif tag == "script":
            self.scripts.append(attrs)
            self._in_jsonld = attrs.get("type") == "application/ld+json"
        elif tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        elif tag == "script":
            self._in_jsonld = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif self._in_jsonld:
            self.jsonld.append(json.loads(data))


def parse(response) -> Head:
    head = Head()
    head.feed(response.get_data(as_text=True))
    return head


def test_every_page_has_its_own_title_description_canonical_and_open_graph(client):
    titles, descriptions = set(), set()
    for path in PAGES:
        response = client.get(path + "?utm_source=newsletter&utm_campaign=spring")
        assert response.status_code == 200, path
        head = parse(response)
        assert head.title.strip(), path
        assert 50 <= len(head.meta["description"]) <= 170, (path, head.meta["description"])
        titles.add(head.title)
        descriptions.add(head.meta["description"])
        # Canonical: the site's address without the visitor's UTM tags.
        assert head.links["canonical"] == SITE + path
        assert head.meta["og:url"] == SITE + path
        assert head.meta["og:title"] == head.title
        assert head.meta["og:description"] == head.meta["description"]
        assert head.meta["og:site_name"] == "NexGenEsis Healthcare"
        assert head.style_attrs == 0, f"{path} has inline style attributes (blocked by the CSP)"
        inline = [s for s in head.scripts if not s.get("src") and s.get("type") != "application/ld+json"]
        assert not inline, f"{path} has an inline <script>: the CSP blocks it (move it to a file under static/js/)"
    assert len(titles) == len(PAGES)
    assert len(descriptions) == len(PAGES)


@pytest.mark.parametrize("path", LANDINGS)
def test_landing_pages_describe_the_clinic_in_json_ld(client, path):
    head = parse(client.get(path))
    assert head.meta["og:type"] == "website"
    (data,) = head.jsonld
    assert data["@type"] == "MedicalClinic"
    assert data["name"] == "NexGenEsis Healthcare"
    assert data["availableService"]["url"] == SITE + path


@pytest.mark.parametrize("path", POSTS)
def test_posts_are_blog_postings_in_json_ld(client, path):
    head = parse(client.get(path))
    assert head.meta["og:type"] == "article"
    (data,) = head.jsonld
    assert data["@type"] == "BlogPosting"
    assert data["headline"] in head.title
    assert data["mainEntityOfPage"] == SITE + path
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["datePublished"])


def test_json_ld_cannot_be_broken_out_of(app, client):
    # A campaign description is marketing text; a closing script tag in it must stay data.
    campaign = registry_of(app).get("stem-cell-therapy")
    object.__setattr__(campaign.page, "description", "Cells </script><script>alert(1)</script> & more")
    html = client.get("/stem-cell-therapy").get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert parse(client.get("/stem-cell-therapy")).jsonld[0]["description"].startswith("Cells </script>")


def test_stem_cell_page_has_the_facts_the_form_and_a_disclaimer_near_the_evidence(client):
    html = client.get("/stem-cell-therapy").get_data(as_text=True)
    for fact in ("IGF-1", "HGF", "VEGF", "60%", "12 months", "50%", "corticosteroid", "2 years", "ultrasound"):
        assert fact in html, fact
    assert 'href="#signup"' in html
    assert 'id="signup"' in html
    assert 'href="/blog/regenerative-medicine-vs-conventional-treatments"' in html
    evidence = html.index("What the evidence says")
    assert "not medical advice" in html[evidence : html.index("Who it may suit")]
    # The form comes before the long text so a phone reaches it after the short hero.
    assert html.index('id="signup-title"') < evidence


def test_home_lists_treatments_and_latest_posts(client):
    head = parse(client.get("/"))
    for path in LANDINGS + POSTS:
        assert path in head.hrefs


def test_sitemap_lists_every_landing_page_and_post(client):
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
    root = ElementTree.fromstring(response.data)  # noqa: S314 - our own sitemap
    locs = [el.text for el in root.findall("s:url/s:loc", ns)]
    assert sorted(locs) == sorted(SITE + path for path in PAGES)


def test_sitemap_leaves_out_inactive_campaigns(app, client):
    campaign = registry_of(app).get("prp-knee-osteoarthritis")
    object.__setattr__(campaign, "active", False)
    assert b"/prp-knee-osteoarthritis<" not in client.get("/sitemap.xml").data
    assert client.get("/prp-knee-osteoarthritis").status_code == 404


def test_robots_keeps_crawlers_out_of_admin_and_private_links(client):
    response = client.get("/robots.txt")
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    assert "User-agent: *" in lines
    for path in ("/admin", "/api", "/unsubscribe", "/confirm"):
        assert f"Disallow: {path}" in lines
    assert f"Sitemap: {SITE}/sitemap.xml" in lines
    assert "Disallow: /" not in lines  # the public site stays crawlable


def test_404_page_helps_the_visitor_on(client):
    response = client.get("/no-such-treatment")
    assert response.status_code == 404
    head = parse(response)
    assert "Page not found" in head.title
    assert head.meta["robots"] == "noindex"
    for path in LANDINGS:
        assert path in head.hrefs
    assert "/blog/" in head.hrefs
    assert any(href.startswith("/blog/") and len(href) > 6 for href in head.hrefs)


def test_api_clients_get_json_errors(client):
    response = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json == {"error": "Page not found", "status": 404}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/stem-cell-therapy"),
        ("GET", "/blog/"),
        ("GET", POSTS[0]),
        ("GET", "/sitemap.xml"),
        ("GET", "/robots.txt"),
        ("GET", "/healthz"),
        ("GET", "/static/css/site.css"),
        ("GET", "/missing"),
        ("POST", "/blog/"),
    ],
)
def test_security_headers_on_every_response(client, method, path):
    response = client.open(path, method=method)
    csp = response.headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "camera=()" in response.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP: HSTS would be ignored anyway


def test_hsts_only_over_https(client):
    response = client.get("/", base_url="https://clinic.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_static_files_are_versioned_and_cached_for_a_year(client):
    html = client.get("/").get_data(as_text=True)
    href = re.search(r'href="(/static/css/site\.css\?v=[0-9a-f]{12})"', html).group(1)
    response = client.get(href)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers.get("ETag")
    # Without a version the browser must check back, so an edited file shows up within the hour.
    assert "immutable" not in client.get("/static/css/site.css").headers["Cache-Control"]


def test_landing_page_html_and_css_weigh_under_50_kb(client):
    html = client.get("/stem-cell-therapy").data
    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "site.css").read_bytes()
    assert len(html) + len(css) < 50 * 1024, f"{len(html)} + {len(css)} bytes"


def test_pages_work_without_javascript_and_load_no_third_party_code(client):
    for path in PAGES:
        head = parse(client.get(path))
        for script in head.scripts:
            src = script.get("src")
            if src:
                assert src.startswith("/static/"), (path, src)
                assert "defer" in script, (path, src)


def test_wrong_method_keeps_the_allow_header_on_the_error_page(client):
    response = client.post("/blog/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "text/html" in response.content_type


def test_privacy_notice_is_linked_from_every_page_and_says_health_details_stay_with_the_clinic(client):
    home = client.get("/").get_data(as_text=True)
    assert 'href="/privacy"' in home
    page = client.get("/privacy")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "never sent to our email provider" in text
    assert "/privacy</loc>" in client.get("/sitemap.xml").get_data(as_text=True)

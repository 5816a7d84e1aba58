"""What keeps the admin quick at a million leads, as an operator sees it: counts that stop and say so, every lead
still reachable (the dashboard's stored figures: test_admin_dashboard_snapshots)."""

from __future__ import annotations

import re

import admin.queries
from tests.support.database import unindexed_leads


def _ids_in_table(html: str) -> list[int]:
    return [int(x) for x in re.findall(r'href="/admin/leads/(\d+)"', html)]


def test_counts_stop_at_the_limit_say_so_and_every_lead_is_still_reachable(staff, make_lead, monkeypatch):
    monkeypatch.setattr(admin.queries, "COUNT_LIMIT", 3)
    monkeypatch.setattr(admin.queries, "PER_PAGE", 2)
    created = {make_lead(f"p{n}@example.com") for n in range(5)}
    html = staff.get("/admin/leads").get_data(as_text=True)
    assert re.search(r"More than 3 leads", html)
    assert "more than 3 new and not yet contacted" in html
    seen: list[int] = []
    url = "/admin/leads"
    for _ in range(5):
        html = staff.get(url).get_data(as_text=True)
        seen += _ids_in_table(html)
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        if not found:
            break
        url = found.group(1).replace("&amp;", "&")
    assert sorted(seen) == sorted(created)  # every lead once, across pages whose number is not known in advance
    # Below the limit the count is exact again.
    html = staff.get("/admin/leads?q=p1%40").get_data(as_text=True)
    assert "1 lead matches" in html


def test_next_links_start_where_the_page_ended_and_list_what_page_numbers_list(staff, make_lead, clock, monkeypatch):
    monkeypatch.setattr(admin.queries, "PER_PAGE", 2)
    created = []
    for n in range(7):
        created.append(make_lead(f"k{n}@example.com"))
        clock.advance(minutes=1)
    for lead_id in created[:3]:
        staff.post(f"/admin/leads/{lead_id}/contacted")
    for sort in ("", "newest", "oldest", "name"):
        by_number: list[int] = []
        for number in range(1, 5):
            by_number += _ids_in_table(staff.get(f"/admin/leads?sort={sort}&page={number}").get_data(as_text=True))
        by_link: list[int] = []
        url = f"/admin/leads?sort={sort}"
        while url:
            html = staff.get(url).get_data(as_text=True)
            by_link += _ids_in_table(html)
            found = re.search(r'<a href="([^"]+)" rel="next">', html)
            url = found.group(1).replace("&amp;", "&") if found else ""
            if sort in ("", "newest", "oldest") and found:
                assert "after=" in url  # a keyset link, not a count of rows to skip
        assert by_link == by_number, sort
        assert sorted(by_link) == sorted(created), sort
    # A starting point that is not one of ours is ignored, never an error.
    for after in (
        "x",
        "w_notatime_1",
        "r_2026-11-23T16:00:00_1",
        "q_20261123T160000000000_1",
        "r_20261123T160000000000_x",
        "w_" * 40,
    ):
        response = staff.get("/admin/leads", query_string={"after": after, "page": 2})
        assert response.status_code == 200, after
        assert _ids_in_table(response.get_data(as_text=True)), after


def test_the_seed_says_how_far_it_is(app, runner):
    result = runner.invoke(args=["demo", "seed", "--leads", "2000", "--seed", "3"])
    assert result.exit_code == 0, result.output
    said = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "1,000 / 2,000 leads (50%)" in said
    assert "2,000 / 2,000 leads (100%)" in said
    assert "building" in said  # the indexes, after the rows
    assert re.search(r"^2,000 leads, .* in [\d.]+s$", said, re.MULTILINE)  # and what it added
    # Every seeded lead is in the search index at once, none left for the worker (SQLite) to find by LIKE.
    assert unindexed_leads(app) == 0

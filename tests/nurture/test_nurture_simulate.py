"""`flask campaigns simulate`: when each email of a campaign would leave for one lead, in local time and UTC."""

from __future__ import annotations


def test_simulate_prints_local_and_utc_times(runner):
    result = runner.invoke(
        args=["campaigns", "simulate", "stem-cell-therapy", "--signup-at", "2026-11-23T22:15", "--tz", "America/Denver"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    welcome = next(line for line in lines if "welcome" in line)
    assert "Mon 2026-11-23 22:15 MST" in welcome
    assert "2026-11-24 05:15 UTC" in welcome
    assert "We got your consultation request" in welcome
    science = next(line for line in lines if "the-science" in line)
    assert "Thu 2026-11-26 09:00 MST" in science
    assert "2026-11-26 16:00 UTC" in science
    knee = next(line for line in lines if "knee " in line)
    assert "skipped" in knee


def test_simulate_with_interest_and_tokyo(runner):
    result = runner.invoke(
        args=[
            "campaigns",
            "simulate",
            "stem-cell-therapy",
            "--signup-at",
            "2026-11-23T22:15",
            "--tz",
            "Asia/Tokyo",
            "--interest",
            "knee",
        ]
    )
    assert result.exit_code == 0, result.output
    knee = next(line for line in result.output.splitlines() if " knee " in line)
    assert "skipped" not in knee
    assert "JST" in knee


def test_simulate_refuses_bad_input(runner):
    assert runner.invoke(args=["campaigns", "simulate", "nope"]).exit_code != 0
    bad_date = runner.invoke(args=["campaigns", "simulate", "stem-cell-therapy", "--signup-at", "tomorrow"])
    assert bad_date.exit_code != 0
    assert "not a date" in bad_date.output
    bad_tz = runner.invoke(args=["campaigns", "simulate", "stem-cell-therapy", "--tz", "Mars/Base"])
    assert bad_tz.exit_code != 0
    assert "not a time zone" in bad_tz.output


def test_simulate_names_the_id_sendgrid_sees(runner, app):
    from mailer.links import provider_campaign_id

    result = runner.invoke(args=["campaigns", "simulate", "stem-cell-therapy", "--signup-at", "2026-11-23T22:15"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert f"SendGrid sees this campaign as {provider_campaign_id('stem-cell-therapy')}" in result.output
    assert "4. knee" in result.output

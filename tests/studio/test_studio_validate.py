"""`flask campaigns validate`: every problem names the file and the field; the campaigns pass."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.content import CAMPAIGNS
from tests.support.content import REPO as ROOT

FLASK = str(Path(sys.executable).with_name("flask"))


@pytest.fixture
def broken(tmp_path) -> Path:
    """A copy of the fixture campaigns to break."""
    root = tmp_path / "campaigns"
    shutil.copytree(CAMPAIGNS, root)
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_campaigns_validate(runner):
    result = runner.invoke(args=["campaigns", "validate"])
    assert result.exit_code == 0, result.output
    assert "campaigns OK" in result.output.strip().splitlines()[-1]


def test_bad_delay_names_file_and_field(runner, broken):
    edit(broken / "stem-cell-therapy" / "campaign.yaml", "delay: 3d", "delay: 2x")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 1
    assert (
        "stem-cell-therapy/campaign.yaml: steps[2].delay: '2x' is not a duration (use 0, 30m, 36h, 2d or 1w)"
        in result.output
    )


def test_unknown_variable_names_the_email_file(runner, broken):
    edit(broken / "stem-cell-therapy" / "emails" / "02-the-science.md", "{{ first_name }}", "{{ first_nme }}")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if "02-the-science.md" in line]
    assert "'first_nme' is undefined" in line
    assert "first_name" in line  # the hint lists what may be used


def test_template_syntax_and_sandbox_errors_are_reported(runner, broken):
    email = broken / "stem-cell-therapy" / "emails" / "01-welcome.md"
    edit(email, "{{ first_name }}", "{{ first_name }")
    edit(broken / "stem-cell-therapy" / "emails" / "05-book.md", "{{ first_name }}", "{{ ''.__class__ }}")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 1
    assert "01-welcome.md: line" in result.output
    assert "05-book.md:" in result.output


def test_missing_blog_post_is_named(runner, broken):
    edit(
        broken / "stem-cell-therapy" / "emails" / "03-compared.md",
        "blog:regenerative-medicine-vs-conventional-treatments",
        "blog:no-such-post",
    )
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 1
    assert "03-compared.md: blog:no-such-post: no such blog post" in result.output


def test_duplicate_step_id_and_reserved_slug(runner, broken):
    edit(broken / "stem-cell-therapy" / "campaign.yaml", "id: compared", "id: the-science")
    (broken / "stem-cell-therapy").rename(broken / "admin")
    edit(broken / "admin" / "campaign.yaml", "slug: stem-cell-therapy", "slug: admin")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 1
    assert "admin/campaign.yaml: slug: 'admin' is reserved" in result.output
    assert "steps[2].id: step id 'the-science' is used twice" in result.output


def test_missing_body_file_and_unknown_setting(runner, broken):
    yaml_path = broken / "stem-cell-therapy" / "campaign.yaml"
    edit(yaml_path, "body: emails/05-book.md", "body: emails/06-missing.md")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert "steps[4].body: file '06-missing.md' not found" in result.output
    edit(yaml_path, "double_opt_in: false", "double_optin: false")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert "campaign.yaml: double_optin: is not a setting campaigns know" in result.output


@pytest.mark.slow
def test_broken_files_never_stop_the_app(broken, tmp_path):
    """Files are import and export now: a typo in one is reported by validate and import, and nothing else stops."""
    edit(broken / "stem-cell-therapy" / "campaign.yaml", "delay: 3d", "delay: 2x")
    env = {
        **os.environ,
        "FLASK_APP": "app:create_app",
        "CAMPAIGNS_DIR": str(broken),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "SECRET_KEY": "x",
        "CLINIC_POSTAL_ADDRESS": "1 Test Street",
    }
    validate = subprocess.run([FLASK, "campaigns", "validate"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert validate.returncode == 1, validate.stderr
    assert "steps[2].delay: '2x' is not a duration" in validate.stdout
    subprocess.run([FLASK, "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    imported = subprocess.run([FLASK, "campaigns", "import"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert imported.returncode == 1
    assert "steps[2].delay: '2x' is not a duration" in imported.stdout
    assert "nothing was imported" in imported.stderr
    tick = subprocess.run([FLASK, "nurture", "tick"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert tick.returncode == 0, tick.stderr


def test_every_campaign_answers_at_once_and_validate_warns_when_one_waits(runner, broken):
    result = runner.invoke(args=["campaigns", "validate"])
    assert "any_time: warning" not in result.output  # every first email has any_time: true
    edit(broken / "prp-knee-osteoarthritis" / "campaign.yaml", "    any_time: true\n", "")
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 0, result.output  # allowed, but said
    [line] = [line for line in result.output.splitlines() if "any_time: warning" in line]
    assert line.startswith(str(broken / "prp-knee-osteoarthritis" / "campaign.yaml") + ": steps[0].any_time: warning:")
    assert "waits for the send window (mon, tue, wed, thu, fri 09:00-17:00)" in line
    assert result.output.strip().endswith("2 campaigns OK (2 warning(s) above)")


def test_validate_warns_that_an_interest_step_tells_the_provider(runner, broken):
    """The knee step goes only to knee leads: its content tells SendGrid their interest (a warning, not an error)."""
    result = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.output.splitlines() if ".when: warning" in line]
    assert line.startswith(f"{broken / 'stem-cell-therapy' / 'campaign.yaml'}: steps[3].when: warning: ")
    assert "only leads interested in Knee get this email" in line
    assert "tells the email provider" in line
    edit(broken / "stem-cell-therapy" / "campaign.yaml", "    when:\n      interest: [knee]\n", "")
    quiet = runner.invoke(args=["campaigns", "validate", str(broken)])
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.output

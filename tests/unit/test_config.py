"""Settings and the policy file: defaults reproduce the seed, errors name file, key and problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.config import ConfigError, load_policy, load_settings


def test_defaults_reproduce_the_seed() -> None:
    settings = load_settings(env={}, dotenv=False)
    policy = settings.policy
    assert settings.announce == "incidents"
    assert settings.database_url == "sqlite+aiosqlite:///./warroom.db"
    assert settings.api_url == "https://slack.com/api/"
    assert [policy.severity(n).name for n in (1, 2, 3, 4)] == ["Critical", "High", "Medium", "Low"]
    assert policy.severity(1).notify == ["ceo", "vp_ops", "on_call", "on_call_backup"]
    assert policy.severity(2).notify == ["engineering_lead", "on_call"]
    assert policy.severity(3).notify == ["on_call"]
    assert policy.severity(4).notify == []
    assert [policy.severity(n).response_target_minutes for n in (1, 2, 3, 4)] == [0, 15, 60, None]
    assert policy.workspace.channel_name_format == "incident-{id}"


def test_env_is_normalised() -> None:
    settings = load_settings(
        env={
            "SLACK_API_URL": "http://127.0.0.1:4003/api",
            "DATABASE_URL": "postgres://u@h/db",
            "WARROOM_ANNOUNCE_CHANNEL": "#ops-incidents",
        },
        dotenv=False,
    )
    assert settings.api_url == "http://127.0.0.1:4003/api/"
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert settings.announce == "ops-incidents"


def test_partial_policy_file_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(
        """
[workspace]
channel_name_format = "inc-{date}-{id}"
timezone = "Europe/Paris"

[severities.2]
notify = ["on_call"]

[directory]
on_call = ["S0ONCALL"]
"""
    )
    policy = load_policy(str(path))
    assert policy.severity(2).notify == ["on_call"]
    assert policy.severity(2).name == "High"
    assert policy.severity(1).name == "Critical"
    assert policy.directory.on_call == ["S0ONCALL"]
    assert policy.workspace.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[workspace]\nchanel_name_format = 'x-{id}'\n",
            "workspace.chanel_name_format: unknown key",
        ),
        (
            "[workspace]\nchannel_name_format = 'incident'\n",
            "workspace.channel_name_format: must contain {id}",
        ),
        ("[workspace]\ntimezone = 'Mars/Olympus'\n", "workspace.timezone: unknown time zone"),
        (
            "[severities.2]\nnotify = ['the-boss']\n",
            "severities.2.notify: unknown function 'the-boss'",
        ),
        ("[directory]\non_call = ['alice']\n", "directory.on_call.0"),
        (
            "[severities.5]\nname='x'\nimpact='y'\nresponse_time='z'\nresponse_target_minutes=1\n",
            "exactly levels 1, 2, 3 and 4",
        ),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_policy_names_file_key_and_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_policy(str(path))
    text = str(caught.value)
    assert text.startswith(str(path) + ":")
    assert message in text


def test_missing_policy_file() -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        load_settings(env={"WARROOM_CONFIG": "nope.toml"}, dotenv=False)


def test_slack_pacing_defaults_to_slacks_own_windows() -> None:
    assert load_settings(env={}, dotenv=False).slack_pacing == 1.0
    for raw, value in (("0", 0.0), ("0.1", 0.1), (" 3 ", 3.0)):
        assert load_settings(env={"WARROOM_SLACK_PACING": raw}, dotenv=False).slack_pacing == value


@pytest.mark.parametrize("raw", ["fast", "-1", "nan", "inf", "1e9"])
def test_a_wrong_slack_pacing_is_named(raw: str) -> None:
    with pytest.raises(ConfigError, match=r"^WARROOM_SLACK_PACING: .* is not a number from 0"):
        load_settings(env={"WARROOM_SLACK_PACING": raw}, dotenv=False)


def test_every_environment_variable_read_is_documented() -> None:
    root = Path(__file__).resolve().parents[2]
    source = (root / "app" / "config.py").read_text(encoding="utf-8")
    names = set(re.findall(r'"((?:WARROOM|SLACK|DATABASE|LOG)_[A-Z_]+)"', source))
    assert {"WARROOM_SLACK_PACING", "WARROOM_REPLICA_NAME", "DATABASE_URL"} <= names
    documented = (root / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert sorted(n for n in names if f"`{n}`" not in documented) == []

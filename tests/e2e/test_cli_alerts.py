"""`warroom alerts test` and what `warroom check` says about alert sources and routes, as
real processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from app.fake_slack import FakeSlack
from tests.support.alerts import post_alerts
from tests.support.constants import BOT_TOKEN
from tests.support.helpers import bot_messages
from tests.support.processes import clean_env, free_port, run, serving
from tests.support.slackclient import eventually

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"
POLICY = """
[alerts]
triage_channel = "alerts"

[alerts.sources.prom]
type = "alertmanager"
token_env = "PROM_TOKEN"

[alerts.sources.hook]
type = "generic"
token_env = "HOOK_TOKEN"

[[alerts.routes]]
match = ['severity="critical"']
action = "declare"
title = "{alertname} on {instance}"

[[alerts.routes]]
action = "triage"

[[alerts.routes]]
match = ["team=db"]
action = "drop"
"""


def policy_file(tmp_path: Path, text: str = POLICY) -> Path:
    path = tmp_path / "warroom.toml"
    path.write_text(text)
    return path


async def test_alerts_test_says_the_route_and_what_would_happen(tmp_path: Path) -> None:
    env = clean_env(tmp_path, WARROOM_CONFIG=str(policy_file(tmp_path)))
    shutil.copy(FIXTURES / "alertmanager_partial.json", tmp_path / "am.json")
    code, out, err = await run(["alerts", "test", "am.json"], env, tmp_path)
    assert code == 0, err
    assert "Takes route 2." in out
    assert "Posts a card in #alerts with Declare, Attach and Dismiss buttons" in out
    code, out, err = await run(["alerts", "test", "am.json", "--source", "nope"], env, tmp_path)
    assert code == 2 and "There is no alert source 'nope' (configured: prom, hook)." in err
    (tmp_path / "bad.json").write_text('{"alerts": 3}')
    code, _, err = await run(["alerts", "test", "bad.json", "--source", "prom"], env, tmp_path)
    assert code == 2 and "is not a alertmanager payload: alerts must be a list" in err


async def test_check_reports_unset_secrets_unreachable_routes_and_triage_channel(
    tmp_path: Path, fake: FakeSlack
) -> None:
    env = clean_env(
        tmp_path,
        WARROOM_CONFIG=str(policy_file(tmp_path)),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        SLACK_API_URL=fake.api_url,
        PROM_TOKEN="set",
    )
    code, _, _ = await run(["db", "upgrade"], env, tmp_path)
    assert code == 0
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1
    assert "FAIL alert source 'hook': HOOK_TOKEN is not set" in out
    assert "'prom'" not in out
    assert "route 3 is never reached: route 2 before it matches every alert" in out
    assert "FAIL alert triage channel #alerts not found" in out
    assert "PROM_TOKEN" not in out.replace("set PROM_TOKEN", "")


async def test_a_bad_route_stops_start_up_with_its_key(tmp_path: Path) -> None:
    bad = POLICY.replace("match = ['severity=\"critical\"']", "match = ['severity=~(']")
    env = clean_env(tmp_path, WARROOM_CONFIG=str(policy_file(tmp_path, bad)))
    code, _, err = await run(["check"], env, tmp_path)
    assert code == 2
    assert "alerts.routes.0.match" in err and "does not compile" in err


async def test_socket_mode_serves_alert_webhooks_on_the_health_port(
    tmp_path: Path, fake: FakeSlack
) -> None:
    """In Socket Mode, Slack's requests come over the socket; with an alert source configured
    the bot also listens on --port for /healthz and the webhooks."""
    fake.add_channel("alerts", members=["UALICE"], bot_member=True)
    env = clean_env(
        tmp_path,
        WARROOM_CONFIG=str(policy_file(tmp_path)),
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=fake.app_token,
        SLACK_API_URL=fake.api_url,
        PROM_TOKEN="prom-secret",
        HOOK_TOKEN="hook-secret",
    )
    payload = json.loads((FIXTURES / "alertmanager_partial.json").read_text())
    payload["commonLabels"] = {"alertname": "DiskFull", "severity": "warning"}
    async with serving(env, tmp_path, free_port(), http=False) as served:
        status, body = await post_alerts(served.base, "prom", payload, token="prom-secret")
        assert (status, body["action"]) == (200, "triage")
        assert (await post_alerts(served.base, "prom", payload, token="wrong"))[0] == 401
        alerts = fake.channel_by_name("alerts")
        assert alerts is not None
        await eventually(lambda: bot_messages(fake, alerts.id), 30)
    assert "prom-secret" not in served.stderr

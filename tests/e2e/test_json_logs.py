"""`LOG_FORMAT=json` as an operator's log pipeline meets it: a real `warroom serve --http`
declares a private incident through Slack's form, and every line it wrote parses as JSON, the
lifecycle line carries its fields, and neither the token nor the private title shows."""

from __future__ import annotations

import json
from pathlib import Path

from app.fake_slack import FakeSlack
from tests.support.constants import ALICE, BOT_TOKEN, SIGNING_SECRET
from tests.support.processes import clean_env, free_port, serving
from tests.support.slackclient import SlackSender, eventually

SECRET_TITLE = "Zanzibar ledger exfiltration 7731"


async def test_json_log_lines_carry_fields_and_no_secret(tmp_path: Path, fake: FakeSlack) -> None:
    env = clean_env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        LOG_FORMAT="json",
    )
    async with serving(env, tmp_path, free_port()) as served:
        async with SlackSender(f"{served.base}/slack/events", SIGNING_SECRET, fake) as sender:
            status, _ = await sender.command("declare")
            assert status == 200
            await eventually(
                lambda: any(
                    v.get("callback_id") == "declare_incident" for v in fake.views.values()
                ),
                10,
            )
            view = next(
                v for v in fake.views.values() if v.get("callback_id") == "declare_incident"
            )
            status, _ = await sender.submit(
                view, {"title": SECRET_TITLE, "severity": "2", "private": ["private"]}
            )
            assert status == 200
            await eventually(lambda: fake.channel_by_name("incident-1") is not None, 10)
    log = served.stderr
    assert log.strip()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert line["time"].endswith("+00:00")
    declared = [line for line in lines if line.get("event") == "incident.declared"]
    assert len(declared) == 1, lines
    assert declared[0]["incident_id"] == 1 and declared[0]["severity"] == 2
    assert declared[0]["private"] is True and declared[0]["user_id"] == ALICE
    assert BOT_TOKEN not in log
    assert SECRET_TITLE not in log and "Zanzibar" not in log

"""The `warroom` command as an operator meets it: a real process, real HTTP, plain errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from app.fake_slack import FakeSlack
from tests.support.constants import ALICE, BOT_TOKEN, SIGNING_SECRET
from tests.support.helpers import announcements, bot_messages
from tests.support.processes import WARROOM, clean_env, free_port, run, serving
from tests.support.slackclient import SlackSender, eventually


async def test_serve_without_credentials_explains_itself(tmp_path: Path) -> None:
    code, out, err = await run(["serve"], clean_env(tmp_path), tmp_path)
    assert code == 2
    assert "Missing: SLACK_BOT_TOKEN, SLACK_APP_TOKEN." in err
    assert "manifest.yml" in err and "SLACK_APP_TOKEN" in err
    assert "Traceback" not in out + err


async def test_bad_policy_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text("[severities.2]\nnotify = ['boss']\n")
    code, _, err = await run(["serve", "--http"], clean_env(tmp_path), tmp_path)
    assert code == 2
    assert err.strip() == (
        "Configuration error: warroom.toml: severities.2.notify: unknown function 'boss'; "
        "known: on_call, on_call_backup, tech_lead, engineering_manager, engineering_lead, "
        "vp_engineering, vp_ops, ceo, specialists."
    )


async def test_db_upgrade(tmp_path: Path) -> None:
    code, out, _ = await run(["db", "upgrade"], clean_env(tmp_path), tmp_path)
    assert code == 0 and "Database is up to date" in out
    code, out, _ = await run(["db", "upgrade"], clean_env(tmp_path), tmp_path)
    assert code == 0


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(bot_token=BOT_TOKEN, bot_user_id="UBOT")
    slack.add_user(ALICE, name="alice")
    slack.add_channel("incidents", members=[ALICE])
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


async def test_check_reports_each_problem(tmp_path: Path, fake: FakeSlack) -> None:
    env = clean_env(
        tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET="s", SLACK_API_URL=fake.api_url
    )
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1 and "FAIL no Warroom database at" in out
    code, _, _ = await run(["db", "upgrade"], env, tmp_path)
    assert code == 0
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 0, out
    assert "Slack token works" in out and "announcement channel #incidents found" in out
    env["WARROOM_ANNOUNCE_CHANNEL"] = "nowhere"
    env["SLACK_BOT_TOKEN"] = "xoxb-wrong"
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1
    assert "Slack refused the token (invalid_auth)" in out


async def test_serve_http_declares_within_the_time_limits(tmp_path: Path, fake: FakeSlack) -> None:
    port = free_port()
    env = clean_env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url.rstrip("/"),
        LOG_LEVEL="WARNING",
    )
    async with serving(env, tmp_path, port) as served:
        async with SlackSender(f"{served.base}/slack/events", SIGNING_SECRET, fake) as sender:
            started = time.monotonic()
            status, _ = await sender.command("declare sev2 Checkout API returning 500s")
            assert status == 200
            assert time.monotonic() - started < 3

            def complete() -> bool:
                room = fake.channel_by_name("incident-1")
                if room is None or not bot_messages(fake, room.id):
                    return False
                return bool(
                    ALICE in room.members
                    and fake.pins(room.id) == [bot_messages(fake, room.id)[0].ts]
                    and announcements(fake)
                )

            await eventually(complete, timeout=5)
            assert time.monotonic() - started < 5
    assert served.proc.returncode == 0


@pytest.mark.parametrize("transport", ["http", "socket_mode"])
async def test_sandbox_says_what_it_is_serves_its_page_and_stops_cleanly(
    tmp_path: Path, transport: str
) -> None:
    env = clean_env(tmp_path, LOG_LEVEL="WARNING")
    del env["DATABASE_URL"]  # the sandbox's own database, in the folder it runs from
    options = ["--socket-mode"] if transport == "socket_mode" else []
    proc = await asyncio.create_subprocess_exec(
        *WARROOM,
        "sandbox",
        "--port",
        "0",
        "--speed",
        "60",
        *options,
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert first.startswith("No Slack credentials: starting the local sandbox at http://")
        assert first.rstrip().endswith("— see docs/setup.md to connect a workspace")
        url = first.split(" at ", 1)[1].split(" ")[0]
        ready = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert ready.startswith(f"Sandbox ready: {url}/")
        assert "warroom-sandbox.db" in ready and "60× real time" in ready
        assert ("Socket Mode" in ready) is bool(options)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/") as response:
                assert response.status == 200
                assert "<title>Warroom sandbox</title>" in await response.text()
            async with session.get(f"{url}/ui/state", params={"as": "UALICE"}) as response:
                names = {c["name"] for c in (await response.json())["channels"]}
                assert names == {"general", "incidents"}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
    assert proc.returncode == 0
    assert (tmp_path / "warroom-sandbox.db").exists()
    assert (tmp_path / "warroom-sandbox.slack.json").exists()
    assert proc.stderr is not None
    logged = (await proc.stderr.read()).decode()
    assert "Traceback" not in logged and "ERROR" not in logged, logged


async def test_sandbox_refuses_a_speed_it_cannot_run_at(tmp_path: Path) -> None:
    code, _, err = await run(["sandbox", "--speed", "0"], clean_env(tmp_path), tmp_path)
    assert code == 2
    assert err.strip() == "--speed must be more than 0 and at most 3600."

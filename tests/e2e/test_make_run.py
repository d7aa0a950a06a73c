"""`make run` picks what to run: the sandbox without Slack credentials, the bot with them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.support.processes import ROOT, clean_env

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


async def _make_run(env: dict[str, str], args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        "run",
        f"ARGS={args}",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # make's child (the sandbox) is stopped with it
    )


async def test_without_credentials_make_run_starts_the_sandbox(tmp_path: Path) -> None:
    if (ROOT / ".env").exists():
        pytest.skip("a .env in the checkout may hold credentials")
    env = clean_env(tmp_path, LOG_LEVEL="WARNING")
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'sandbox.db'}"
    proc = await _make_run(env, "--port 0")
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert first.startswith("No Slack credentials: starting the local sandbox at http://")
        ready = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert ready.startswith("Sandbox ready:") and str(tmp_path / "sandbox.db") in ready
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 30)


async def test_with_a_bot_token_make_run_starts_the_bot(tmp_path: Path) -> None:
    env = clean_env(tmp_path, SLACK_BOT_TOKEN="xoxb-test-token")
    proc = await _make_run(env, "")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    # `warroom serve` itself answers: Socket Mode needs the app token it was not given.
    assert "Missing: SLACK_APP_TOKEN" in err.decode()
    assert proc.returncode != 0

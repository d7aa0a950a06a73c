"""`warroom export` and `warroom stats`, run as processes on the database the bot wrote, agree
with what the bot shows in Slack."""

from __future__ import annotations

from pathlib import Path

from tests.support.bot import Bot
from tests.support.constants import ALICE, BOB, BOT_TOKEN
from tests.support.helpers import answers, channel, last_view
from tests.support.processes import clean_env, run
from tests.support.scenarios import at, scripted_incident


async def test_export_writes_the_postmortem_the_bot_posted(bot: Bot, tmp_path: Path) -> None:
    room = await scripted_incident(bot)
    await at(bot, 30)
    await bot.slack.command("postmortem", channel=room)
    await bot.settle()
    [stored] = bot.fake.files.values()
    assert stored.content is not None
    document = stored.content.decode()

    # `warroom export` names people through Slack, as the upload does.
    env = clean_env(
        tmp_path,
        DATABASE_URL=bot.warroom.settings.database_url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=bot.fake.api_url,
    )
    code, out, err = await run(["export", "1"], env, tmp_path)
    assert code == 0, err
    assert out == document
    code, _, _ = await run(["export", "1", "-o", str(tmp_path / "pm.md")], env, tmp_path)
    assert code == 0 and (tmp_path / "pm.md").read_text() == document
    code, _, err = await run(["export", "99"], env, tmp_path)
    assert code == 1 and "There is no incident #99." in err


async def test_cli_and_slack_stats_agree(bot: Bot, tmp_path: Path) -> None:
    fake, clock = bot.fake, bot.clock
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    clock.advance(minutes=4)
    await bot.slack.command("ack 1", user=BOB)
    await bot.settle()
    clock.advance(minutes=20)
    await bot.slack.command("declare sev1 Login down")
    await bot.settle()
    clock.advance(minutes=30)
    await bot.slack.command("ack 2", user=BOB)
    await bot.slack.command("resolve 2")
    await bot.settle()
    await bot.slack.submit(last_view(fake, "resolve_incident"), {})
    await bot.settle()
    await bot.slack.command("declare")
    await bot.settle()
    await bot.slack.submit(
        last_view(fake, "declare_incident"),
        {"title": "Secret breach", "severity": "4", "private": ["private"]},
    )
    await bot.settle()
    assert channel(fake, "incident-3").is_private

    # Alice declared the private incident: she sees all three, as the CLI does.
    await bot.slack.command("stats", user=ALICE)
    await bot.settle()
    shown = answers(fake)[-1]
    env = clean_env(tmp_path, DATABASE_URL=bot.warroom.settings.database_url)
    code, printed, err = await run(["stats"], env, tmp_path)
    assert code == 0, err
    table = printed.split("\n\n", 1)[1].rstrip("\n")
    assert f"```\n{table}\n```" in shown
    assert printed.startswith("Incidents declared in the last 30 days")
    blocks = {block.split(":")[0]: block.splitlines() for block in table.split("\n\n")}
    assert blocks["Sev2"][:2] == ["Sev2: 1 incident", "Acknowledge    median 4m, p90 4m"]
    assert blocks["Sev1"][:2] == ["Sev1: 1 incident", "Acknowledge    median 30m, p90 30m"]
    assert blocks["Sev1"][-1] == "Ack in target  0% (0/1)"
    assert blocks["Sev3"] == ["Sev3: no incidents"]
    assert blocks["Sev4"][0] == "Sev4: 1 incident"
    assert blocks["Sev4"][-1] == "Ack in target  n/a (no target)"
    assert blocks["All severities"][0] == "All severities: 3 incidents"
    assert "Secret breach" not in shown + printed
    code, printed7, _ = await run(["stats", "--days", "7"], env, tmp_path)
    await bot.slack.command("stats 7d", user=ALICE)
    await bot.settle()
    assert printed7.split("\n\n", 1)[1].rstrip("\n") in answers(fake)[-1]

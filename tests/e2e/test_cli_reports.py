"""`warroom export` and `warroom stats`, run as processes on the database the bot wrote, agree
with what the bot shows in Slack."""

from __future__ import annotations

from pathlib import Path

from tests.support.bot import Bot
from tests.support.constants import BOB
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

    env = clean_env(tmp_path, DATABASE_URL=bot.warroom.settings.database_url)
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

    await bot.slack.command("stats", user=BOB)
    await bot.settle()
    shown = answers(fake)[-1]
    env = clean_env(tmp_path, DATABASE_URL=bot.warroom.settings.database_url)
    code, printed, err = await run(["stats"], env, tmp_path)
    assert code == 0, err
    table = printed.split("\n\n", 1)[1].rstrip("\n")
    assert f"```\n{table}\n```" in shown
    assert printed.startswith("Incidents declared in the last 30 days")
    lines = {line.split()[0]: line.split() for line in table.splitlines()[2:]}
    assert lines["Sev2"][:4] == ["Sev2", "1", "4m", "4m"]
    assert lines["Sev1"][:4] == ["Sev1", "1", "30m", "30m"] and "0%" in lines["Sev1"][-2]
    assert lines["Sev4"][1] == "1" and lines["Sev4"][-1] == "n/a"
    assert lines["All"][1] == "3"
    assert "Secret breach" not in shown + printed
    code, printed7, _ = await run(["stats", "--days", "7"], env, tmp_path)
    await bot.slack.command("stats 7d", user=BOB)
    await bot.settle()
    assert printed7.split("\n\n", 1)[1].rstrip("\n") in answers(fake)[-1]

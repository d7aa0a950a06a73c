"""`warroom check`: each thing that must be true for the bot to work, said plainly."""

from __future__ import annotations

from jinja2 import TemplateError

from app.config import Settings
from app.integrations.slack_web import SlackGateway, make_client
from app.messages.render import Renderer
from app.services.ports import SlackError
from app.store.db import Database


async def run_checks(settings: Settings) -> int:
    problems = 0

    def ok(text: str) -> None:
        print(f"  ok   {text}")

    def bad(text: str, fix: str) -> None:
        nonlocal problems
        problems += 1
        print(f"  FAIL {text}\n       -> {fix}")

    print("Warroom configuration check")
    ok(f"policy: {settings.config_path or 'built-in defaults (the seed process)'}")
    try:
        Renderer(settings.policy.workspace.templates_dir).check()
        ok("message templates load")
    except TemplateError as exc:
        name = getattr(exc, "filename", None) or getattr(exc, "name", None) or "a template"
        bad(f"template {name}: {exc.message or exc}", f"fix {name}")
    db = Database(settings.database_url)
    try:
        await db.ping()
        ok("database answers")
    except Exception as exc:
        bad(f"database: {exc}", "check DATABASE_URL and that the server is running")
    finally:
        await db.dispose()
    if not settings.bot_token:
        bad("SLACK_BOT_TOKEN is not set", "copy the Bot User OAuth Token into .env")
        return 1
    if not settings.signing_secret and not settings.app_token:
        bad(
            "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set",
            "set SLACK_APP_TOKEN for Socket Mode or SLACK_SIGNING_SECRET for HTTP mode",
        )
    gateway = SlackGateway(make_client(settings.bot_token, settings.api_url))
    try:
        auth = await gateway.auth_test()
        ok(f"Slack token works: bot @{auth.get('user')} in {auth.get('team')}")
    except SlackError as exc:
        bad(
            f"Slack refused the token ({exc.code})",
            "copy the Bot User OAuth Token (xoxb-...) again; reinstall the app if it was revoked",
        )
        return 1
    try:
        channel = await gateway.find_channel(settings.announce)
    except SlackError as exc:
        bad(f"could not list channels ({exc.code})", "add the channels:read scope and reinstall")
        channel = None
    else:
        if channel:
            ok(f"announcement channel #{settings.announce} found ({channel})")
        else:
            bad(
                f"announcement channel #{settings.announce} not found",
                "create it, or set WARROOM_ANNOUNCE_CHANNEL to an existing channel",
            )
    print("All good." if not problems else f"{problems} problem(s) to fix.")
    return 0 if not problems else 1

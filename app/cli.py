"""The `warroom` command: serve, db upgrade, check.

Every failure a person can fix ends in one plain sentence and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from app.config import ConfigError, Settings, load_settings

SETUP_HELP = """\
Warroom needs Slack credentials before it can run.

1. Create the Slack app: https://api.slack.com/apps -> Create New App -> From a manifest,
   pick your workspace and paste manifest.yml from this folder.
2. Install it to the workspace, then copy into .env (see .env.example):
     SLACK_BOT_TOKEN=xoxb-...     (OAuth & Permissions -> Bot User OAuth Token)
   and, for Socket Mode (the manifest's default):
     SLACK_APP_TOKEN=xapp-...     (Basic Information -> App-Level Tokens, scope connections:write)
   or, for HTTP mode (`warroom serve --http`):
     SLACK_SIGNING_SECRET=...     (Basic Information -> Signing Secret)
3. Run `make run` again.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warroom", description="Incident war rooms in Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (Socket Mode, or HTTP with --http)")
    serve.add_argument("--http", action="store_true", help="serve HTTP instead of Socket Mode")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP address (default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")
    sub.add_parser("check", help="check the configuration and the Slack connection")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            return _serve(settings, args.http, args.host, args.port)
        if args.command == "db":
            from app.store.migrate import upgrade_sync

            upgrade_sync(settings.database_url)
            print(f"Database is up to date ({_redact(settings.database_url)}).")
            return 0
        if args.command == "check":
            from app.checks import run_checks

            return asyncio.run(run_checks(settings))
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def _serve(settings: Settings, http: bool, host: str, port: int) -> int:
    # Socket Mode unless asked for HTTP, or unless only HTTP credentials are configured.
    only_http = settings.signing_secret and not settings.app_token
    mode = "http" if http or only_http else "socket"
    missing = settings.missing_for(mode)
    if missing:
        print(f"Missing: {', '.join(missing)}.\n", file=sys.stderr)
        print(SETUP_HELP, file=sys.stderr)
        return 2
    from app.server import serve_http, serve_socket
    from app.slack.bot import build
    from app.slack.gateway import SlackError

    if mode == "http" and not http:
        logging.getLogger(__name__).info(
            "SLACK_APP_TOKEN is not set: serving HTTP on %s:%d (pass --http to say so)", host, port
        )
    warroom = build(settings)
    try:
        if mode == "http":
            asyncio.run(serve_http(warroom, host, port))
        else:
            asyncio.run(serve_socket(warroom))
    except SlackError as exc:
        print(
            f"Slack refused {exc.method} ({exc.code}). Check SLACK_BOT_TOKEN; "
            "`warroom check` explains more.",
            file=sys.stderr,
        )
        return 2
    return 0


def _redact(url: str) -> str:
    """Database URLs may carry a password; never print it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main())

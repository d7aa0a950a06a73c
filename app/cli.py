"""The `warroom` command: serve, db upgrade, check, stats, export, alerts test.

Every failure a person can fix ends in one plain sentence and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace

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
    parser.add_argument("--version", action="version", version=f"warroom {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (Socket Mode, or HTTP with --http)")
    serve.add_argument("--http", action="store_true", help="serve HTTP instead of Socket Mode")
    serve.add_argument(
        "--host",
        default="0.0.0.0",
        help="HTTP address (default 0.0.0.0); in Socket Mode it serves /healthz, /metrics and "
        "webhooks",
    )
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument(
        "--status-port",
        type=int,
        default=None,
        help="also serve the public status page alone on this port (WARROOM_STATUS_PORT)",
    )
    serve.add_argument(
        "--status-host",
        default=None,
        help="the status page's own address (WARROOM_STATUS_HOST, default 0.0.0.0)",
    )
    sandbox = sub.add_parser(
        "sandbox", help="try Warroom in a browser: the bot, a local Slack and its web page"
    )
    sandbox.add_argument("--port", type=int, default=3000, help="web page port (default 3000)")
    sandbox.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="run the bot's clock N times faster (60: a 5-minute escalation in 5 seconds)",
    )
    sandbox.add_argument("--open", action="store_true", help="open the page in a browser")
    sandbox.add_argument(
        "--socket-mode",
        action="store_true",
        help="the bot connects over Socket Mode (as `warroom serve` does) instead of HTTP",
    )
    db = sub.add_parser("db", help="database tasks")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations")
    check = sub.add_parser("check", help="check the configuration and the Slack connection")
    check.add_argument(
        "--live",
        action="store_true",
        help="also send a test call to each pager target that has one (webhooks)",
    )
    stats = sub.add_parser("stats", help="response metrics by severity")
    stats.add_argument(
        "--days", type=int, default=30, help="incidents declared in the last N days (default 30)"
    )
    export = sub.add_parser("export", help="write an incident's postmortem (Markdown)")
    export.add_argument("incident", type=int, help="incident number")
    export.add_argument("-o", "--output", help="file to write (default: standard output)")
    alerts = sub.add_parser("alerts", help="alert sources and routes")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    alerts_test = alerts_sub.add_parser(
        "test", help="say which route a webhook payload takes and what would happen"
    )
    alerts_test.add_argument("file", help="a webhook payload (JSON)")
    alerts_test.add_argument(
        "--source", help="the source it comes from (default: the only one of its type)"
    )
    playbooks = sub.add_parser("playbooks", help="check playbooks and see what they would do")
    playbooks_sub = playbooks.add_subparsers(dest="playbooks_command", required=True)
    playbooks_sub.add_parser(
        "lint", help="check the policy file's playbooks: one line per problem, naming the key"
    )
    dry = playbooks_sub.add_parser(
        "dry-run",
        help="which playbooks would run when such an incident is declared, and what each "
        "step would do (no Slack, no database)",
    )
    dry.add_argument("--type", default="", help="incident type (default: the default type)")
    dry.add_argument("--severity", type=int, required=True, choices=[1, 2, 3, 4])
    dry.add_argument("--service", default="", help="the affected service")
    args = parser.parse_args(argv)

    if args.command == "playbooks" and args.playbooks_command == "lint":
        return _playbooks_lint()
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    from app.store.startup import DatabaseProblem

    try:
        if args.command == "serve":
            if args.status_port is not None:
                settings = replace(settings, status_port=args.status_port)
            if args.status_host:
                settings = replace(settings, status_host=args.status_host)
            return _serve(settings, args.http, args.host, args.port)
        if args.command == "sandbox":
            return _sandbox(settings, args.port, args.speed, args.open, args.socket_mode)
        if args.command == "db":
            asyncio.run(_upgrade(settings))
            print(f"Database is up to date ({_redact(settings.database_url)}).")
            return 0
        if args.command == "check":
            from app.checks import run_checks

            return asyncio.run(run_checks(settings, live=args.live))
        if args.command == "stats":
            if args.days < 1:
                print("--days must be at least 1.", file=sys.stderr)
                return 2
            print(asyncio.run(_stats(settings, args.days)), end="")
            return 0
        if args.command == "export":
            return asyncio.run(_export(settings, args.incident, args.output))
        if args.command == "alerts":
            return _alerts_test(settings, args.file, args.source)
        if args.command == "playbooks":
            from app.checks import dry_run

            print("\n".join(dry_run(settings.policy, args.type, args.severity, args.service)))
            return 0
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except DatabaseProblem as exc:
        print(f"Database error: {exc.sentence()}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def configure_logging(level: str, fmt: str = "text") -> None:
    """Standard error, as text or one JSON object per line (LOG_FORMAT), tokens redacted."""
    from app.telemetry.logs import configure

    configure(level, fmt)
    quiet_libraries(level)


def quiet_libraries(level: str) -> None:
    """Alembic says seven lines at every start and APScheduler two at every engine tick, which
    drowns the lines about incidents: only their warnings, unless the operator asked for
    DEBUG."""
    for name in ("alembic", "apscheduler"):
        logging.getLogger(name).setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)


def _serve(settings: Settings, http: bool, host: str, port: int) -> int:
    # Socket Mode unless asked for HTTP, or unless only HTTP credentials are configured.
    only_http = settings.signing_secret and not settings.app_token
    mode = "http" if http or only_http else "socket"
    missing = settings.missing_for(mode)
    if missing:
        print(f"Missing: {', '.join(missing)}.\n", file=sys.stderr)
        print(SETUP_HELP, file=sys.stderr)
        return 2
    wrong = settings.token_problems(mode)
    if wrong:
        print(f"Configuration error: {wrong[0]}.", file=sys.stderr)
        return 2
    from app.bootstrap import build
    from app.server import serve_http, serve_socket
    from app.services.ports import SlackError
    from app.store.startup import AlreadyServing, check_sqlite_file, hold_for_serving

    check_sqlite_file(settings.database_url)
    try:
        # The descriptor stays open until the process ends, and the lock with it.
        hold_for_serving(settings.database_url)
    except AlreadyServing as exc:
        print(f"Cannot start: {exc}.", file=sys.stderr)
        return 2

    if mode == "http" and not http:
        logging.getLogger(__name__).info(
            "SLACK_APP_TOKEN is not set: serving HTTP on %s:%d (pass --http to say so)", host, port
        )
    runtime = build(settings)
    try:
        if mode == "http":
            asyncio.run(serve_http(runtime, host, port))
        else:
            asyncio.run(serve_socket(runtime, host, port))
    except SlackError as exc:
        if exc.uncertain:  # no answer at all: not the token's fault
            print(
                f"Cannot start: cannot reach Slack at {settings.api_url}: {exc.reason}.",
                file=sys.stderr,
            )
            return 2
        print(
            f"Slack refused {exc.method} ({exc.code}). Check SLACK_BOT_TOKEN; "
            "`warroom check` explains more.",
            file=sys.stderr,
        )
        return 2
    return 0


async def _upgrade(settings: Settings) -> None:
    from app.store.migrate import upgrade
    from app.store.startup import check_sqlite_file, database_errors, wait_for_database

    await asyncio.to_thread(check_sqlite_file, settings.database_url)
    await wait_for_database(settings.database_url, settings.db_wait_seconds)
    async with database_errors(settings.database_url):
        await upgrade(settings.database_url)


def _sandbox(
    settings: Settings, port: int, speed: float, open_browser: bool, socket_mode: bool
) -> int:
    import math

    if not (math.isfinite(speed) and 0 < speed <= 3600):
        print("--speed must be more than 0 and at most 3600.", file=sys.stderr)
        return 2
    if not 0 <= port <= 65535:
        print("--port must be between 0 and 65535.", file=sys.stderr)
        return 2
    from app.sandbox.run import serve

    asyncio.run(serve(settings, port, speed, open_browser, socket_mode))
    return 0


async def _stats(settings: Settings, days: int) -> str:
    """The same figures and table as `/incident stats`, read from the same database."""
    from datetime import UTC, datetime

    from app.messages import stats
    from app.services.metrics import stats as load
    from app.store.db import Database
    from app.store.startup import database_errors, require_schema

    await require_schema(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with database_errors(settings.database_url):
            rows = await load(db, settings.policy, datetime.now(UTC), days)
    finally:
        await db.dispose()
    return stats.plain(rows, days)


async def _export(settings: Settings, incident_id: int, output: str | None) -> int:
    """The postmortem `/incident postmortem` shares, to a file or standard output."""
    from pathlib import Path

    from app.messages.render import Renderer
    from app.services.errors import NotFound
    from app.services.postmortem import render_postmortem
    from app.store.db import Database
    from app.store.startup import database_errors, require_schema

    await require_schema(settings.database_url)
    # With the bot's token, people are named as in the file `/incident postmortem` shares (the
    # same bytes). The export may run where Slack is not configured or not reachable: then
    # the document carries user IDs (`@U…`) in place of names.
    names = None
    if settings.bot_token:
        from app.integrations.slack_web import SlackGateway, make_client

        client = make_client(settings.bot_token, settings.api_url)
        names = SlackGateway(client, pacing=settings.slack_pacing).user_name
    db = Database(settings.database_url)
    try:
        renderer = Renderer(settings.policy.workspace.templates_dir)
        async with database_errors(settings.database_url):
            text = await render_postmortem(db, settings.policy, renderer, incident_id, names)
    except NotFound as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        await db.dispose()
    if output:
        await asyncio.to_thread(Path(output).write_text, text, encoding="utf-8")
        print(f"Postmortem of incident #{incident_id} written to {output}.", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _playbooks_lint() -> int:
    """`warroom playbooks lint`: each problem on one line naming the key; exit 1 on any."""
    import os

    from dotenv import load_dotenv

    from app.checks import playbook_lint
    from app.config import policy_path

    load_dotenv(".env", override=False)
    path = policy_path(dict(os.environ))
    problems = playbook_lint(path)
    for line in problems:
        print(line)
    if problems:
        return 1
    from app.config import load_policy

    count = len(load_policy(path).playbooks) if path else 0
    print(f"{path or 'built-in defaults'}: {count} playbook(s), no problems.")
    return 0


def _alerts_test(settings: Settings, file: str, source: str | None) -> int:
    """`warroom alerts test <file.json>`: the route a payload takes and what would happen,
    without storing or posting anything."""
    import json
    from pathlib import Path

    from app.domain.alerts import PayloadError, explain
    from app.integrations.alerts import PARSERS
    from app.services.alerts import SENDERS

    try:
        data = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"Cannot read {file}: {exc}.", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{file} is not JSON: {exc}.", file=sys.stderr)
        return 2
    if not isinstance(data, dict):
        print(f"{file} is JSON, but not an object.", file=sys.stderr)
        return 2
    sources = settings.policy.alerts.sources
    if source is None:
        kind = _payload_kind(data)
        matching = [name for name, s in sources.items() if s.type == kind]
        if len(matching) != 1:
            known = ", ".join(f"{n} ({s.type})" for n, s in sources.items()) or "none"
            print(
                f"{file} looks like a {kind} payload; name its source with --source "
                f"(configured: {known}).",
                file=sys.stderr,
            )
            return 2
        source = matching[0]
    if source not in sources:
        known = ", ".join(sources) or "none"
        print(f"There is no alert source {source!r} (configured: {known}).", file=sys.stderr)
        return 2
    kind = sources[source].type
    try:
        batch = PARSERS[kind](data)
    except PayloadError as exc:
        print(f"{file} is not a {kind} payload: {exc}.", file=sys.stderr)
        return 2
    for line in explain(settings.policy.alerts, source, SENDERS[kind], batch):
        print(line)
    return 0


def _payload_kind(data: dict[str, object]) -> str:
    if "orgId" in data or data.get("version") == "1":
        return "grafana"
    if "groupKey" in data or data.get("version") == "4":
        return "alertmanager"
    return "generic"


def _version() -> str:
    """The installed distribution's version (pyproject.toml's, once installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("warroom")
    except PackageNotFoundError:
        return "(not installed)"


def _redact(url: str) -> str:
    """Database URLs may carry a password; never print it."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    raise SystemExit(main())

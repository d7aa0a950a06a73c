"""Run the fake Slack server standalone: `python -m app.fake_slack --port 4003`.

Prints the API URL (the value for SLACK_API_URL) on its own line, then serves until
interrupted; drive it through the `/_fake/...` control endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import FakeSlack


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m app.fake_slack", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4003, help="0 picks a free port")
    parser.add_argument("--token", default="xoxb-test", help="the bot token to accept")
    parser.add_argument(
        "--app-token", default="xapp-test", help="the app-level token (Socket Mode) to accept"
    )
    parser.add_argument("--bot-user", default="UBOT", help="the bot's user id")
    parser.add_argument("--team", default="T1", help="the workspace id")
    parser.add_argument("--seed", type=int, default=None, help="seed for generated ids")
    return parser.parse_args(argv)


async def serve(options: argparse.Namespace) -> None:
    """Start the fake, announce its URL, wait for SIGINT/SIGTERM, stop cleanly."""
    fake = FakeSlack(
        bot_token=options.token,
        bot_user_id=options.bot_user,
        team_id=options.team,
        seed=options.seed,
        app_token=options.app_token,
    )
    await fake.start(host=options.host, port=options.port)
    print(fake.api_url, flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    if sys.platform != "win32":  # asyncio has no signal handlers there; Ctrl-C still works
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()

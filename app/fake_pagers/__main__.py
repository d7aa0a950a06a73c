"""Run both fake pagers standalone: `python -m app.fake_pagers --pagerduty-port 4010
--opsgenie-port 4011 --routing-key <32 characters> --genie-key <key>`.

Prints each base URL on its own line (`pagerduty http://…`, `opsgenie http://…`), then serves
until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .opsgenie import FakeOpsgenie
from .pagerduty import FakePagerDuty

DEFAULT_ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m app.fake_pagers", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pagerduty-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--opsgenie-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--routing-key", default=DEFAULT_ROUTING_KEY, help="Events API v2 key")
    parser.add_argument("--genie-key", default="genie-test-key", help="Opsgenie API key")
    parser.add_argument("--seed", type=int, default=None, help="seed for generated ids")
    return parser.parse_args(argv)


async def serve(options: argparse.Namespace) -> None:
    """Start both fakes, announce their URLs, wait for SIGINT/SIGTERM, stop cleanly."""
    pagerduty = FakePagerDuty(seed=options.seed)
    pagerduty.add_service(options.routing_key)
    opsgenie = FakeOpsgenie(seed=options.seed)
    opsgenie.add_key(options.genie_key)
    await pagerduty.start(options.host, options.pagerduty_port)
    await opsgenie.start(options.host, options.opsgenie_port)
    print(f"pagerduty {pagerduty.url}", flush=True)
    print(f"opsgenie {opsgenie.url}", flush=True)
    stopped = asyncio.Event()
    if sys.platform != "win32":  # asyncio has no signal handlers there; Ctrl-C still works
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        await opsgenie.stop()
        await pagerduty.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()

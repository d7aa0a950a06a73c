"""Run the fake Statuspage standalone: `python -m app.fake_statuspage --port 4020 --page-id
pg1warroom01 --key test-key --component api=API --component checkout=Checkout`.

Each `--component ID=NAME` adds an operational component with that id. Prints the API's base
URL (`statuspage http://…/v1`), then serves until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import FakeStatuspage


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m app.fake_statuspage", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--page-id", default="pg1warroom01")
    parser.add_argument("--key", action="append", default=[], help="an accepted API key")
    parser.add_argument(
        "--component", action="append", default=[], metavar="ID=NAME", help="a component"
    )
    parser.add_argument(
        "--per-minute", type=int, default=60, help="requests per key per minute (0: no limit)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for generated ids")
    options = parser.parse_args(argv)
    for spec in options.component:
        if "=" not in spec or not spec.split("=", 1)[0] or not spec.split("=", 1)[1]:
            parser.error(f"--component {spec!r}: use ID=NAME")
    return options


async def serve(options: argparse.Namespace) -> None:
    """Start the fake, announce its URL, wait for SIGINT/SIGTERM, stop cleanly."""
    fake = FakeStatuspage(
        options.page_id, requests_per_minute=options.per_minute or None, seed=options.seed
    )
    for key in options.key or ["statuspage-test-key"]:
        fake.add_key(key)
    for spec in options.component:
        component_id, name = spec.split("=", 1)
        fake.add_component(name, component_id)
    await fake.start(options.host, options.port)
    print(f"statuspage {fake.url}/v1", flush=True)
    stopped = asyncio.Event()
    if sys.platform != "win32":  # asyncio has no signal handlers there; Ctrl-C still works
        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()

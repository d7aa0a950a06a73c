"""Running the `warroom` command as a real process, with a clean environment."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

WARROOM = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A minimal environment, so the developer's .env and exports do not leak into a test.

    COVERAGE_* variables pass through: with them the child process is measured too."""
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env.update(extra)
    return env


async def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`warroom <args>` to completion: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *WARROOM,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

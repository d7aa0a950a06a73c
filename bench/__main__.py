"""`python -m bench` (`make bench`): run every benchmark and print one table
(`python -m bench sustained`: only the benchmarks named, by name or module).

Each benchmark runs in a fresh process, one after the other: none inherits another's event
loop, database or memory (row 3 reports the process's resident memory), and two never compete
for the machine's cores. A benchmark that crashes becomes a FAILED row instead of hiding the
others' results; the exit status is then 1. Missed targets are results, not failures: exit 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.harness import RESULT_PREFIX, Outcome, Row, machine
from bench.report import render

BENCHMARKS = (
    ("ack latency", "bench.ack_latency"),
    ("declare path", "bench.declare_path"),
    ("engine scale", "bench.engine_scale"),
    ("sustained", "bench.sustained"),
    ("visible", "bench.visible"),
    ("alert storm", "bench.alert_storm"),
)
TIMEOUT = 420
# Benchmarks that repeat their measurement get longer (row 4: five runs of a storm).
TIMEOUTS = {"bench.sustained": 450}


def run(name: str, module: str) -> tuple[Outcome, bool]:
    """Run one benchmark module; its result is the marked line on its stdout."""
    started = time.perf_counter()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(
            [sys.executable, "-m", module],
            capture_output=True,
            text=True,
            timeout=TIMEOUTS.get(module, TIMEOUT),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return _failed(name, f"no result within {TIMEOUTS.get(module, TIMEOUT)} s"), False
    took = time.perf_counter() - started
    print(f"bench: {name} done in {took:.0f} s", file=sys.stderr, flush=True)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return Outcome.from_json(json.loads(line.removeprefix(RESULT_PREFIX))), True
    sys.stderr.write(done.stderr)  # the traceback, for whoever has to fix it
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return _failed(name, f"exit status {done.returncode}: {tail}"), False


def _failed(name: str, reason: str) -> Outcome:
    return Outcome(rows=[Row(name, "FAILED", "-", False, reason)])


def main(names: list[str] | None = None) -> int:
    """Run every benchmark, or those named (`python -m bench sustained visible`)."""
    chosen = list(BENCHMARKS)
    if names:
        known = {n for n, _ in BENCHMARKS} | {m.rsplit(".", 1)[1] for _, m in BENCHMARKS}
        unknown = [n for n in names if n not in known]
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; one of {sorted(known)}")
            return 2
        chosen = [(n, m) for n, m in BENCHMARKS if n in names or m.rsplit(".", 1)[1] in names]
    started = time.perf_counter()
    sections: list[tuple[str, Outcome]] = []
    healthy = True
    for name, module in chosen:
        outcome, ok = run(name, module)
        sections.append((name, outcome))
        healthy = healthy and ok
    numbers = [[n for n, _ in BENCHMARKS].index(name) + 1 for name, _ in chosen]
    print(render(sections, machine(), time.perf_counter() - started, numbers))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`make image-test`: build the image, then run it as it is deployed and check it works.

    python3 deploy/docker/image_test.py [--image warroom:image-test] [--no-build]

On a private Docker network: Postgres (the postgres:16-alpine image, or one built from Debian's
packages when that cannot be pulled), the fake Slack (`python -m app.fake_slack`, from the image
itself), the one-shot `warroom db upgrade`, then `warroom serve --http` with a read-only root
filesystem and a tmpfs at /tmp, as the Helm chart runs it. Checked: the image runs as a non-root
user, has no compiler, carries its OCI labels; the migration succeeds; /healthz answers 200 and
Docker's HEALTHCHECK reports healthy; a signed `/incident help` slash command is answered; and
`warroom check` finds the database. Everything it starts is removed at the end.

Needs a Docker daemon: without one it says so and exits 1. Standard library only.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_IMAGE = "postgres:16-alpine"
POSTGRES_DEBIAN_IMAGE = "warroom-postgres-test:latest"
DATABASE_URL = "postgresql://warroom:warroom@postgres:5432/warroom"
BOT_TOKEN = "xoxb-image-test"
SIGNING_SECRET = "image-test-signing-secret"
SLACK_API_URL = "http://slack:4003/api/"


class Failed(Exception):
    """A check failed; the message says which and what was seen."""


def docker(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise Failed(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stderr.strip()}")
    return done


def say(text: str) -> None:
    print(f"image-test: {text}", flush=True)


def daemon_problem() -> str:
    """Why no Docker daemon can be used, or "" when one answers."""
    try:
        done = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError:
        return "the docker command is not installed"
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 30 s"
    if done.returncode != 0 or not done.stdout.strip():
        return (done.stderr.strip().splitlines() or ["docker info failed"])[-1]
    return ""


def check_image(image: str) -> str:
    """The image's own properties; returns the base image it was built on."""
    user = docker("run", "--rm", "--entrypoint", "id", image, "-u").stdout.strip()
    if user in ("", "0"):
        raise Failed(f"the image runs as uid {user or '?'}: it must not be root")
    say(f"runs as uid {user}")
    compilers = docker(
        "run", "--rm", "--entrypoint", "sh", image, "-c",
        "for c in gcc cc c++ g++ clang make; do command -v $c; done; true",
    ).stdout.split()  # fmt: skip
    if compilers:
        raise Failed(f"the image has compilers: {', '.join(compilers)}")
    say("no compiler in the image")
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Labels}}", image).stdout
    )
    for key in ("title", "version", "revision", "licenses", "base.name"):
        if not labels.get(f"org.opencontainers.image.{key}"):
            raise Failed(f"label org.opencontainers.image.{key} is missing: {labels}")
    version = docker("run", "--rm", image, "--version").stdout.strip()
    say(f"{version}; labels ok (base {labels['org.opencontainers.image.base.name']})")
    return str(labels["org.opencontainers.image.base.name"])


def postgres_image(base: str) -> tuple[str, list[str]]:
    """An image to run Postgres from, and the environment it needs."""
    present = docker("image", "inspect", POSTGRES_IMAGE, check=False).returncode == 0
    if present or docker("pull", "-q", POSTGRES_IMAGE, check=False).returncode == 0:
        env = ["POSTGRES_USER=warroom", "POSTGRES_PASSWORD=warroom", "POSTGRES_DB=warroom"]
        return POSTGRES_IMAGE, env
    say(f"cannot pull {POSTGRES_IMAGE}: building Postgres from Debian's packages on {base}")
    docker(
        "build", "-q", "-f", str(ROOT / "deploy/docker/postgres-test.Dockerfile"),
        "--build-arg", f"BASE_IMAGE={base}", "-t", POSTGRES_DEBIAN_IMAGE,
        str(ROOT / "deploy/docker"),
    )  # fmt: skip
    return POSTGRES_DEBIAN_IMAGE, []


def wait_for(what: str, test: Callable[[], bool], timeout: float, logs_of: str) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            if test():
                return
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(1)
    logs = docker("logs", "--tail", "40", logs_of, check=False)
    said = logs.stdout + logs.stderr
    raise Failed(f"{what} within {timeout:.0f} s ({last}); {logs_of} said:\n{said}")


def slash_command(base: str, text: str) -> tuple[int, str]:
    """POST a slash command signed as Slack signs it; the status and body of the answer."""
    body = urllib.parse.urlencode(
        {
            "team_id": "T1",
            "channel_id": "CGENERAL",
            "user_id": "UALICE",
            "command": "/incident",
            "text": text,
            "response_url": "http://slack:4003/response/image-test",
            "trigger_id": "1.2.image-test",
        }
    )
    ts = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256)
    request = urllib.request.Request(
        f"{base}/slack/events",
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": f"v0={digest.hexdigest()}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def healthz(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=3) as response:
            status: int = response.status
            return status == 200
    except urllib.error.HTTPError:
        return False  # 503 while the database or Slack is not ready yet


def run(image: str) -> None:
    base = check_image(image)
    suffix = f"{os.getpid()}"
    network = f"warroom-image-test-{suffix}"
    names = {role: f"warroom-image-test-{role}-{suffix}" for role in ("postgres", "slack", "bot")}
    docker("network", "create", network)
    try:
        pg_image, pg_env = postgres_image(base)
        docker(
            "run", "-d", "--name", names["postgres"], "--network", network,
            "--network-alias", "postgres", *[a for e in pg_env for a in ("-e", e)], pg_image,
        )  # fmt: skip
        docker(
            "run", "-d", "--name", names["slack"], "--network", network,
            "--network-alias", "slack", "--entrypoint", "python3", image,
            "-m", "app.fake_slack", "--host", "0.0.0.0", "--port", "4003", "--token", BOT_TOKEN,
        )  # fmt: skip
        say(f"Postgres ({pg_image}) and the fake Slack started")

        # The one-shot migration, as compose's `migrate` service and the chart's Job run it; it
        # waits for Postgres to accept connections.
        migrate = docker(
            "run", "--rm", "--network", network, "-e", f"DATABASE_URL={DATABASE_URL}",
            image, "db", "upgrade", check=False, timeout=180,
        )  # fmt: skip
        if migrate.returncode != 0 or "Database is up to date" not in migrate.stdout:
            raise Failed(f"warroom db upgrade failed:\n{migrate.stdout}{migrate.stderr}")
        say(f"migrated: {migrate.stdout.strip()}")

        docker(
            "run", "-d", "--name", names["bot"], "--network", network,
            "--read-only", "--tmpfs", "/tmp", "-p", "127.0.0.1::3000",
            "--health-interval", "2s", "--health-start-period", "60s",
            "-e", f"DATABASE_URL={DATABASE_URL}", "-e", f"SLACK_BOT_TOKEN={BOT_TOKEN}",
            "-e", f"SLACK_SIGNING_SECRET={SIGNING_SECRET}", "-e", f"SLACK_API_URL={SLACK_API_URL}",
            image, "serve", "--http",
        )  # fmt: skip
        published = docker("port", names["bot"], "3000/tcp").stdout.split()[0]
        base_url = f"http://{published}"
        wait_for("/healthz did not answer 200", lambda: healthz(base_url), 90, names["bot"])
        say(f"/healthz answers 200 at {base_url}")

        def healthy() -> bool:
            state = docker("inspect", "--format", "{{.State.Health.Status}}", names["bot"])
            return state.stdout.strip() == "healthy"

        wait_for("Docker's HEALTHCHECK did not report healthy", healthy, 60, names["bot"])
        say("HEALTHCHECK reports healthy")

        status, text = slash_command(base_url, "help")
        if status != 200 or not text.startswith("*Warroom: `/incident` commands*"):
            raise Failed(f"/incident help answered {status}: {text[:300]!r}")
        say("a signed /incident help is answered")

        check = docker("exec", names["bot"], "warroom", "check", check=False)
        if not any(
            line.split()[:3] == ["ok", "database", "answers"] for line in check.stdout.splitlines()
        ):
            raise Failed(f"warroom check did not find the database:\n{check.stdout}{check.stderr}")
        say("warroom check finds the database")
    finally:
        for name in names.values():
            docker("rm", "-f", "-v", name, check=False)
        docker("network", "rm", network, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="image_test.py", description=__doc__.split("\n")[0])
    parser.add_argument("--image", default="warroom:image-test", help="the tag to build and test")
    parser.add_argument("--no-build", action="store_true", help="test --image as it is")
    args = parser.parse_args(argv)

    problem = daemon_problem()
    if problem:
        print(
            f"image-test: no Docker daemon ({problem}). This test builds and runs the image, "
            "so it needs one: start dockerd, or set DOCKER_HOST.",
            file=sys.stderr,
        )
        return 1
    try:
        if not args.no_build:
            build = subprocess.run(
                [str(ROOT / "deploy/docker/build.sh")],
                env={**os.environ, "IMAGE": args.image},
                check=False,
            )
            if build.returncode != 0:
                raise Failed("the image did not build (see above)")
        run(args.image)
    except Failed as exc:
        print(f"image-test: FAILED: {exc}", file=sys.stderr)
        return 1
    say("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

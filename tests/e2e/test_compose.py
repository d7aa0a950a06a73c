"""compose.yaml: its structure (read with PyYAML), then Compose's own check of it
(`docker compose config`, or Debian's `docker-compose config`: neither needs a Docker daemon).

Without a compose command the second part is skipped, except in CI (`.ci/run` installs Debian's
docker-compose), where it fails. Opens no database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
IN_CI = bool(os.environ.get("CI"))
WARROOM_SERVICES = ("migrate", "bot", "bot-http", "sandbox")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())  # `<<: *warroom` merges are resolved
    assert isinstance(loaded, dict)
    return loaded


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    reason = "needs `docker compose` or docker-compose (apt-get install docker-compose)"
    if IN_CI:
        pytest.fail(f"In CI the compose check must run, but it {reason}")
    pytest.skip(reason)


def test_postgres_keeps_its_data_in_a_volume_and_reports_health(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert "ports" not in postgres  # reachable from the bots only


def test_migrations_run_once_before_the_bots(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for bot in ("bot", "bot-http"):
        assert services[bot]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }


def test_socket_mode_by_default_http_and_sandbox_behind_profiles(compose: dict[str, Any]) -> None:
    services = compose["services"]
    default = sorted(name for name, s in services.items() if not s.get("profiles"))
    assert default == ["bot", "migrate", "postgres"]
    assert services["bot"]["command"][0] == "serve"
    assert "--http" not in services["bot"]["command"]
    assert services["bot-http"]["profiles"] == ["http"]
    assert "--http" in services["bot-http"]["command"]
    assert services["bot-http"]["ports"] == ["${WARROOM_HTTP_PORT:-3000}:3000"]
    assert services["sandbox"]["profiles"] == ["sandbox"]
    assert services["sandbox"]["command"][0] == "sandbox"


def test_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "bot", "bot-http"):
        service = services[name]
        assert service["env_file"] == ".env"
        assert service["read_only"] is True
        assert service["tmpfs"] == ["/tmp"]
        environment = service["environment"]
        assert set(environment) == {"DATABASE_URL"}, "tokens belong in .env"
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith(
        "${POSTGRES_PASSWORD:?"
    )
    text = COMPOSE_FILE.read_text()
    assert "xoxb-" not in text and "xapp-" not in text


def test_compose_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_command()
    shutil.copy(COMPOSE_FILE, tmp_path / "compose.yaml")
    (tmp_path / ".env").write_text(
        "POSTGRES_PASSWORD=compose-test-password\nSLACK_BOT_TOKEN=xoxb-compose-test\n"
    )
    everything = ["--profile", "http", "--profile", "sandbox"]
    done = subprocess.run(
        [*command, *everything, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    services = resolved["services"]
    assert set(services) == {"postgres", *WARROOM_SERVICES}
    url = "postgresql://warroom:compose-test-password@postgres:5432/warroom"
    for name in ("migrate", "bot", "bot-http"):
        assert services[name]["environment"]["DATABASE_URL"] == url
        assert services[name]["environment"]["SLACK_BOT_TOKEN"] == "xoxb-compose-test"
        assert services[name]["image"] == "warroom:latest"

    # Without POSTGRES_PASSWORD, Compose stops and says where to set it.
    (tmp_path / ".env").write_text("SLACK_BOT_TOKEN=xoxb-compose-test\n")
    env = {k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"}
    done = subprocess.run(
        [*command, "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in done.stderr

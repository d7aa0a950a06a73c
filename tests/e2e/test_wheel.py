"""The wheel, as `pip install .` (a container build) installs it: built from this checkout,
installed into a new virtual environment outside it, and run from an unrelated folder.

The new environment reuses the dependencies already installed here (a .pth file naming this
environment's site-packages) so nothing is downloaded, but not this checkout: the `app` it
imports must be the one inside the new environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import tomllib
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from jinja2 import TemplateNotFound
from slack_sdk.signature import SignatureVerifier

from app.checks import render_templates
from app.domain.policy import Policy
from app.fake_slack import FakeSlack
from app.messages import status_page
from app.messages.render import PackagedTemplates, Renderer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-wheel-test"
SECRET = "wheel-test-signing-secret"
BUILT_IN = sorted(p.name for p in (ROOT / "templates").glob("*.j2"))
STATUS_TEMPLATES = sorted(p.name for p in (ROOT / "templates" / "status").glob("*.j2"))
RENDERED = (
    f"{len(BUILT_IN)} message templates and {len(STATUS_TEMPLATES)} status page templates "
    "render with sample data"
)
# What a build needs from the checkout; the rest (.venv, .git, caches, old builds) stays out.
LEFT_OUT = shutil.ignore_patterns(
    ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    home: Path  # an empty working directory, outside the checkout

    @property
    def warroom(self) -> Path:
        return self.venv / "bin" / "warroom"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _run(
    args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd, env=env)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("wheel")
    # Built from a copy, so no build/ or *.egg-info left in the checkout feeds a stale file in.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source])
    (wheel,) = dist.glob("warroom-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    site = _run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
    )
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    # Plain path lines: the editable install's own .pth hook in that folder is not run.
    (Path(site.stdout.strip()) / "dev_dependencies.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv / "bin" / "python",
            "install",
            "-q",
            "--no-deps",
            wheel,
        ]
    )

    home = tmp / "home"
    home.mkdir()
    done = Installed(wheel=wheel, venv=venv, home=home)
    # The database `warroom check` looks at (a missing one is a failure); the migrations run
    # from the wheel.
    _run([done.warroom, "db", "upgrade"], cwd=home, env=env(home))
    yield done


def env(home: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no PYTHONPATH, nothing of the checkout."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "SYSTEMROOT"}}
    return {
        **keep,
        "HOME": str(home),
        "DATABASE_URL": f"sqlite+aiosqlite:///{home / 'w.db'}",
        **extra,
    }


def test_wheel_carries_code_templates_migrations_and_licence(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("*.py")}
    assert modules - names == set(), "add the missing packages to [tool.setuptools] packages"
    assert {f"app/templates/{n}" for n in BUILT_IN} <= names
    status = {p.relative_to(ROOT).as_posix() for p in (ROOT / "templates/status").iterdir()}
    status = {n.replace("templates/", "app/templates/", 1) for n in status}
    assert status - names == set(), "the status page's templates must ship (package-data)"
    assert "app/store/migrations/script.py.mako" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    page = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app/sandbox/static").iterdir()}
    assert page - names == set(), "the sandbox's page files must ship (package-data)"


def test_app_is_imported_from_the_new_environment(installed: Installed) -> None:
    code = "import app, app.templates; print(app.__file__); print(app.templates.__file__)"
    done = _run([installed.python, "-c", code], cwd=installed.home, env=env(installed.home))
    for line in done.stdout.split():
        assert Path(line).is_relative_to(installed.venv), done.stdout


def test_version(installed: Installed) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    done = _run([installed.warroom, "--version"], cwd=installed.home, env=env(installed.home))
    assert done.stdout.strip() == f"warroom {version}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(bot_token=TOKEN, bot_user_id="UBOT", team_id="T1")
    slack.add_user("UALICE", name="alice")
    slack.add_channel("incidents", members=["UALICE"])
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


def slack_env(installed: Installed, fake: FakeSlack) -> dict[str, str]:
    return env(
        installed.home,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.api_url,
        LOG_LEVEL="WARNING",
    )


async def warroom(installed: Installed, fake: FakeSlack, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        installed.warroom,
        *args,
        cwd=installed.home,
        env=slack_env(installed, fake),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_check_renders_every_built_in_template(installed: Installed, fake: FakeSlack) -> None:
    code, out = await warroom(installed, fake, "check")
    assert code == 0, out
    assert f"ok   {RENDERED}" in out
    assert len(STATUS_TEMPLATES) >= 2


def test_check_renders_the_status_page_templates(monkeypatch: pytest.MonkeyPatch) -> None:
    """`warroom check` renders templates/status/ too: a page that would fail at /status fails
    the check, and a package without them is reported."""
    ok, failures = render_templates(Policy())
    assert ok == f"{RENDERED}" and failures == []
    broken = status_page.environment().from_string("{{ page.no_such_field }}")
    monkeypatch.setattr(status_page.environment(), "get_template", lambda name: broken)
    ok, failures = render_templates(Policy())
    assert ok == ""
    assert [text.split(":")[0] for text, _ in failures] == [
        f"status page template status/{name}" for name in STATUS_TEMPLATES
    ]
    monkeypatch.setattr(status_page, "template_names", lambda: [])
    ok, failures = render_templates(Policy())
    assert [text for text, _ in failures] == [
        "no status page templates found: the installed package has no app.templates/status"
    ]


async def test_check_renders_an_operators_templates_over_the_built_in_ones(
    installed: Installed, fake: FakeSlack
) -> None:
    folder = installed.home / "custom"
    folder.mkdir(exist_ok=True)
    (folder / "help.md.j2").write_text("ACME: ask #ops. {{ severities | length }} severities.\n")
    config = installed.home / "warroom.toml"
    config.write_text('[workspace]\ntemplates_dir = "custom"\n')
    try:
        code, out = await warroom(installed, fake, "check")
        assert code == 0, out
        assert f"{RENDERED} (1 from custom)" in out
        # Loading alone would not see this: the update has no `posted_at_utc`.
        (folder / "update.md.j2").write_text("Update {{ u.posted_at_utc }}\n")
        code, out = await warroom(installed, fake, "check")
        assert code == 1, out
        assert "FAIL template update.md.j2:" in out and "posted_at_utc" in out
    finally:
        config.unlink()


def test_without_built_in_templates_check_fails_and_start_up_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a wheel built without its templates meets: one clear line, not a 500 later."""
    monkeypatch.setattr(PackagedTemplates, "_root", lambda self: None)
    ok, failures = render_templates(Policy())
    assert ok == ""
    assert [text for text, _ in failures] == [
        "no message templates found: the installed package has no app.templates"
    ]
    with pytest.raises(TemplateNotFound, match="no built-in message templates installed"):
        Renderer().check()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_installed_bot_answers_help(installed: Installed, fake: FakeSlack) -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        installed.warroom,
        *("serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
        cwd=installed.home,
        env=slack_env(installed, fake),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(f"{base}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if proc.returncode is not None or time.monotonic() > deadline:
                    output = await proc.stdout.read() if proc.stdout else b""  # type: ignore[union-attr]
                    pytest.fail(f"the installed bot did not start: {output.decode()}")
                await asyncio.sleep(0.1)

            body = urlencode(
                {
                    "team_id": "T1",
                    "channel_id": "CGENERAL",
                    "user_id": "UALICE",
                    "command": "/incident",
                    "text": "help",
                    "response_url": fake.new_response_url(),
                    "trigger_id": fake.new_trigger_id(),
                }
            )
            ts = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(
                    timestamp=ts, body=body
                ),
            }
            async with session.post(f"{base}/slack/events", data=body, headers=headers) as r:
                status, text = r.status, await r.text()
        # A text-only acknowledgment is sent as plain text; Slack shows it to the user.
        assert status == 200, text
        assert text.startswith("*Warroom: `/incident` commands*"), text
        assert "*Sev1* Critical (Immediate)" in text
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def test_installed_sandbox_serves_its_page(installed: Installed) -> None:
    """`warroom sandbox` from the wheel: its page and scripts come from the package."""
    proc = await asyncio.create_subprocess_exec(
        installed.warroom,
        *("sandbox", "--port", "0"),
        cwd=installed.home,
        env=env(installed.home, LOG_LEVEL="WARNING"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        url = first.split(" at ", 1)[1].split(" ")[0]
        async with aiohttp.ClientSession() as session:
            for path in ("/", "/static/app.js", "/static/blocks.js", "/static/app.css"):
                async with session.get(url + path) as response:
                    assert response.status == 200, (path, first)
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)

"""Settings from the environment (and `.env`) and the policy file, checked before anything runs.

A bad setting stops start-up with one sentence that names where the problem is and what to do,
never a traceback: the person reading it may be setting the bot up mid-incident.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from app.domain.playbooks import KeyProblem, Playbook
from app.domain.policy import SLACK_ID, Policy

SLACK_API_DEFAULT = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./warroom.db"
DEFAULT_DB_WAIT_SECONDS = 60
DEFAULT_SLACK_PACING = 1.0
MAX_SLACK_PACING = 1000.0


class ConfigError(Exception):
    """A setting is missing or wrong. The message is shown to the operator as it is."""


@dataclass(frozen=True)
class HttpLimits:
    """What one caller of the HTTP server may hold: Slack's requests are small and arrive whole."""

    max_body_bytes: int = 1024 * 1024
    max_connections: int = 256
    # A connection must send a request's headers this soon after it opens (or after the last
    # response on it); then the body this soon after the headers.
    idle_timeout: float = 15.0
    body_timeout: float = 10.0
    health_timeout: float = 2.0


# Environment variable -> HttpLimits field.
HTTP_LIMITS_ENV = {
    "WARROOM_HTTP_MAX_BODY_BYTES": "max_body_bytes",
    "WARROOM_HTTP_MAX_CONNECTIONS": "max_connections",
    "WARROOM_HTTP_IDLE_TIMEOUT": "idle_timeout",
    "WARROOM_HTTP_BODY_TIMEOUT": "body_timeout",
    "WARROOM_HTTP_HEALTH_TIMEOUT": "health_timeout",
}


# Enough to keep several incidents' work moving while Slack answers; few enough that a burst of
# requests cannot crowd out the next acknowledgment (measured: docs/performance.md).
DEFAULT_CONCURRENT_WORK = 8


@dataclass(frozen=True)
class Settings:
    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    api_url: str = SLACK_API_DEFAULT
    database_url: str = DEFAULT_DATABASE_URL
    # How long `serve` and `db upgrade` wait for the database to answer before giving up.
    db_wait_seconds: int = DEFAULT_DB_WAIT_SECONDS
    config_path: str = ""
    announce_channel: str = ""
    log_level: str = "INFO"
    # "text" (one readable line per record) or "json" (one JSON object per line).
    log_format: str = "text"
    policy: Policy = field(default_factory=Policy)
    http: HttpLimits = field(default_factory=HttpLimits)
    # This replica's name among those sharing the database ("" = host and folder, see
    # app.store.leases.ReplicaName).
    replica_name: str = ""
    # How many acknowledged requests' work runs at once (app.slack.inflight).
    concurrent_work: int = DEFAULT_CONCURRENT_WORK
    # The public status page on an address of its own (WARROOM_STATUS_HOST and _PORT), so it
    # can face the internet while /slack/events does not; None: only on the main port.
    status_host: str = "0.0.0.0"
    status_port: int | None = None
    # Every window of Slack's published rate limits is multiplied by this before the Slack
    # adapter paces its calls to them: 1.0 Slack's own, 0 no pacing (429s are still waited out),
    # N with N replicas sharing one bot token to give each a fair share.
    slack_pacing: float = DEFAULT_SLACK_PACING
    # The secrets alert sources present, by the environment variable `[alerts.sources]` names
    # (`token_env`, `hmac_env`); never shown.
    alert_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # The secrets of the pager targets and of PagerDuty's webhook, by the environment variable
    # `[paging]` names; never shown.
    pager_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    # The hosted status page's API key, by the variable `[statuspage.atlassian]` names.
    statuspage_secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def webhooks_wanted(self) -> bool:
        """Whether anything may call Warroom's webhooks (alert sources, PagerDuty)."""
        paging = self.policy.paging
        return bool(self.policy.alerts.sources) or bool(
            self.pager_secrets.get(paging.pagerduty_webhook_secret_env)
        )

    @property
    def announce(self) -> str:
        """The announcement channel: the environment wins over the policy file."""
        return (self.announce_channel or self.policy.workspace.announce_channel).lstrip("#")

    def token_problems(self, mode: str = "") -> list[str]:
        """Tokens set but of the wrong kind (for `mode` only, when given): pasting one token
        where the other goes is the usual set-up slip."""
        problems = []
        if self.bot_token and not self.bot_token.startswith("xoxb-"):
            problems.append(f"SLACK_BOT_TOKEN must start with xoxb- ({_kind(self.bot_token)})")
        if self.app_token and mode != "http" and not self.app_token.startswith("xapp-"):
            problems.append(f"SLACK_APP_TOKEN must start with xapp- ({_kind(self.app_token)})")
        return problems

    def missing_for(self, mode: str) -> list[str]:
        """Names of the variables a mode ('socket' or 'http') still needs."""
        needed = ["SLACK_BOT_TOKEN"]
        needed.append("SLACK_APP_TOKEN" if mode == "socket" else "SLACK_SIGNING_SECRET")
        values = {
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_APP_TOKEN": self.app_token,
            "SLACK_SIGNING_SECRET": self.signing_secret,
        }
        return [name for name in needed if not values[name]]


def _kind(token: str) -> str:
    """What a token starts with, without showing any of its secret part."""
    prefix, dash, _ = token.partition("-")
    if dash and prefix.isalpha() and len(prefix) <= 5:
        return f"this one starts with {prefix}-"
    return "this one does not"


def _normalise_api_url(url: str) -> str:
    # slack_sdk joins method names onto the base URL; without the trailing slash the path is lost.
    return url if url.endswith("/") else url + "/"


def _normalise_database_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        url = "sqlite+aiosqlite://" + url.removeprefix("sqlite://")
    return url


def _http_limits(env: dict[str, str]) -> HttpLimits:
    values: dict[str, float | int] = {}
    defaults = HttpLimits()
    for name, attr in HTTP_LIMITS_ENV.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        whole = isinstance(getattr(defaults, attr), int)
        try:
            value: float | int = int(raw) if whole else float(raw)
        except ValueError:
            kind = "a whole number" if whole else "a number of seconds"
            raise ConfigError(f"{name}: {raw!r} is not {kind}.") from None
        if not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name}: {raw!r} must be more than 0.")
        values[attr] = value
    return HttpLimits(**values)  # type: ignore[arg-type]


DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}
URL_EXAMPLES = "sqlite:///path/to/warroom.db or postgresql://user:password@host:5432/dbname"


def _seconds(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 86_400:
        raise ConfigError(f"{name}: {raw!r} is not a number of seconds from 0 to 86400.")
    return value


def _pacing(env: dict[str, str], name: str = "WARROOM_SLACK_PACING") -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_SLACK_PACING
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= MAX_SLACK_PACING):
        raise ConfigError(
            f"{name}: {raw!r} is not a number from 0 to {MAX_SLACK_PACING:g} (1 paces to Slack's "
            "own limits, 0 turns pacing off)."
        )
    return value


def _check_database_url(url: str) -> str:
    """A URL Warroom can use. The value is not repeated: it may hold a password."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"DATABASE_URL is not a database URL; use {URL_EXAMPLES}.") from None
    if parsed.drivername not in DRIVERS:
        backend = parsed.get_backend_name()
        what = (
            backend
            if backend not in {"sqlite", "postgresql"}
            else f"the {parsed.drivername} driver"
        )
        raise ConfigError(
            f"DATABASE_URL: {what} is not supported; use SQLite or Postgres, e.g. {URL_EXAMPLES} "
            "(Warroom picks the driver)."
        )
    return url


def policy_path(env: dict[str, str]) -> str:
    """The policy file: WARROOM_CONFIG, else `warroom.toml` in the working folder when there
    is one; "" for none (the built-in defaults)."""
    path = env.get("WARROOM_CONFIG", "").strip()
    if not path and Path("warroom.toml").is_file():
        path = "warroom.toml"
    return path


def read_policy_file(path: str) -> dict[str, Any]:
    """The policy file's TOML, as data (a ConfigError when it cannot be read or parsed)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (WARROOM_CONFIG points at it).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}.") from None


def load_settings(env: dict[str, str] | None = None, dotenv: bool = True) -> Settings:
    """Read settings from `env` (default: the process environment after loading `.env`)."""
    if env is None:
        if dotenv:
            load_dotenv(Path.cwd() / ".env", override=False)
        env = dict(os.environ)
    config_path = policy_path(env)
    policy = load_policy(config_path) if config_path else Policy()
    templates = policy.workspace.templates_dir
    if templates and not Path(templates).is_dir():
        raise ConfigError(f"{config_path}: workspace.templates_dir: {templates!r} is not a folder.")
    level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"LOG_LEVEL: {level!r} is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL."
        )
    log_format = env.get("LOG_FORMAT", "text").strip().lower() or "text"
    if log_format not in {"text", "json"}:
        raise ConfigError(f"LOG_FORMAT: {log_format!r} is not a format; use text or json.")
    return Settings(
        bot_token=env.get("SLACK_BOT_TOKEN", "").strip(),
        signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip(),
        app_token=env.get("SLACK_APP_TOKEN", "").strip(),
        api_url=_normalise_api_url(env.get("SLACK_API_URL", "").strip() or SLACK_API_DEFAULT),
        database_url=_check_database_url(
            _normalise_database_url(env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL)
        ),
        db_wait_seconds=_seconds(env, "WARROOM_DB_WAIT_SECONDS", DEFAULT_DB_WAIT_SECONDS),
        config_path=config_path,
        announce_channel=env.get("WARROOM_ANNOUNCE_CHANNEL", "").strip(),
        log_level=level,
        log_format=log_format,
        policy=policy,
        http=_http_limits(env),
        replica_name=env.get("WARROOM_REPLICA_NAME", "").strip(),
        concurrent_work=_concurrent_work(env),
        status_host=env.get("WARROOM_STATUS_HOST", "").strip() or "0.0.0.0",
        status_port=_status_port(env),
        slack_pacing=_pacing(env),
        alert_secrets=alert_secrets(policy, env),
        pager_secrets={
            name: env[name].strip()
            for name in policy.paging.secret_names()
            if env.get(name, "").strip()
        },
        statuspage_secrets={
            name: env[name].strip()
            for name in (
                [policy.statuspage.atlassian.api_key_env] if policy.statuspage.atlassian else []
            )
            if env.get(name, "").strip()
        },
    )


def _status_port(env: dict[str, str]) -> int | None:
    name = "WARROOM_STATUS_PORT"
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise ConfigError(f"{name}: {raw!r} is not a port number (0 to 65535).")
    return int(raw)


def _concurrent_work(env: dict[str, str]) -> int:
    name = "WARROOM_CONCURRENT_WORK"
    raw = env.get(name, "").strip()
    if not raw:
        return DEFAULT_CONCURRENT_WORK
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= 1000:
        raise ConfigError(f"{name}: {raw!r} is not a whole number from 1 to 1000.")
    return value


def alert_secrets(policy: Policy, env: dict[str, str]) -> dict[str, str]:
    """The values of the variables the alert sources name, those that are set."""
    names = {
        name
        for source in policy.alerts.sources.values()
        for name in (source.token_env, source.hmac_env)
        if name
    }
    return {name: env[name].strip() for name in sorted(names) if env.get(name, "").strip()}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge so a file that changes one severity's audience keeps the rest of the seed."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _stringify_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {str(k): _stringify_keys(v) for k, v in data.items()}
    return data


def load_policy(path: str) -> Policy:
    """Parse and validate a policy file on top of the seed defaults."""
    return build_policy(read_policy_file(path), path)


def build_policy(raw: dict[str, Any], source: str = "policy") -> Policy:
    """Validate `raw` deep-merged over the seed defaults; errors name `source` and the key."""
    defaults = _stringify_keys(Policy().model_dump(mode="json"))
    try:
        return Policy.model_validate(_merge(defaults, _stringify_keys(raw)))
    except ValidationError as exc:
        raise ConfigError(_problem_line(source, exc.errors()[0])) from None


def policy_problems(raw: dict[str, Any], source: str = "policy") -> list[str]:
    """Every problem of a policy file, one line each naming the key (`warroom playbooks
    lint`); empty when the policy loads."""
    merged = _merge(_stringify_keys(Policy().model_dump(mode="json")), _stringify_keys(raw))
    try:
        Policy.model_validate(merged)
    except ValidationError as exc:
        errors = exc.errors()
        if isinstance((errors[0].get("ctx") or {}).get("error"), KeyProblem):
            # Every field is valid and only the playbooks' cross-checks failed: say them all.
            books = TypeAdapter(list[Playbook]).validate_python(merged.get("playbooks", []))
            policy = Policy.model_validate({**merged, "playbooks": []})
            problems = policy.model_copy(update={"playbooks": books}).playbook_problems()
            return [f"{source}: {key}: {message}." for key, message in problems]
        return [_problem_line(source, error) for error in errors]
    return []


def _problem_line(source: str, error: Any) -> str:
    # A dict key's own error carries "[key]" after the key: the key names the place already.
    key = ".".join(str(part) for part in error["loc"] if part != "[key]") or "(top level)"
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, KeyProblem):
        key = cause.key
    message = " ".join(_explain(error).split())
    return f"{source}: {key}: {message}."


def _explain(error: Any) -> str:
    """One policy-file error in the words of the file (TOML), with the value found."""
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    got = f"(got {_shown(error.get('input'))})"
    bounds = {
        "greater_than_equal": ("must be at least", "ge"),
        "greater_than": ("must be more than", "gt"),
        "less_than_equal": ("must be at most", "le"),
        "less_than": ("must be less than", "lt"),
    }
    if kind in bounds:
        words, bound = bounds[kind]
        return f"{words} {ctx[bound]} {got}"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against docs/configuration.md)"
    if kind == "missing":
        return "required"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be a whole number {got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false {got}"
    if kind == "string_type":
        return f"must be text in quotes {got}"
    if kind == "list_type":
        return f"must be a list {got}"
    if kind in {"dict_type", "model_type", "model_attributes_type"}:
        return f"must be a table {got}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')} {got}"
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == SLACK_ID.pattern:
        return f"must be a Slack user ID (U…, W…) or user group ID (S…) {got}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']} {got}"


def _shown(value: Any) -> str:
    """A value as the policy file spells it, cut short."""
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, dict):
        shown = "a table"
    else:
        shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."

"""Settings from the environment (and `.env`) and the policy file, checked before anything runs.

A bad setting stops start-up with one sentence that names where the problem is and what to do,
never a traceback: the person reading it may be setting the bot up mid-incident.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from pydantic import ValidationError

from app.domain.policy import Policy

SLACK_API_DEFAULT = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./warroom.db"


class ConfigError(Exception):
    """A setting is missing or wrong. The message is shown to the operator as it is."""


@dataclass(frozen=True)
class Settings:
    bot_token: str = ""
    signing_secret: str = ""
    app_token: str = ""
    api_url: str = SLACK_API_DEFAULT
    database_url: str = DEFAULT_DATABASE_URL
    config_path: str = ""
    announce_channel: str = ""
    log_level: str = "INFO"
    policy: Policy = field(default_factory=Policy)
    # This replica's name among those sharing the database ("" = host and folder, see
    # app.store.leases.ReplicaName).
    replica_name: str = ""

    @property
    def announce(self) -> str:
        """The announcement channel: the environment wins over the policy file."""
        return (self.announce_channel or self.policy.workspace.announce_channel).lstrip("#")

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


def load_settings(env: dict[str, str] | None = None, dotenv: bool = True) -> Settings:
    """Read settings from `env` (default: the process environment after loading `.env`)."""
    if env is None:
        if dotenv:
            load_dotenv(Path.cwd() / ".env", override=False)
        env = dict(os.environ)
    config_path = env.get("WARROOM_CONFIG", "").strip()
    if not config_path and Path("warroom.toml").is_file():
        config_path = "warroom.toml"
    policy = load_policy(config_path) if config_path else Policy()
    templates = policy.workspace.templates_dir
    if templates and not Path(templates).is_dir():
        raise ConfigError(f"{config_path}: workspace.templates_dir: {templates!r} is not a folder.")
    level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"LOG_LEVEL: {level!r} is not a level; use DEBUG, INFO, WARNING, ERROR or CRITICAL."
        )
    return Settings(
        bot_token=env.get("SLACK_BOT_TOKEN", "").strip(),
        signing_secret=env.get("SLACK_SIGNING_SECRET", "").strip(),
        app_token=env.get("SLACK_APP_TOKEN", "").strip(),
        api_url=_normalise_api_url(env.get("SLACK_API_URL", "").strip() or SLACK_API_DEFAULT),
        database_url=_normalise_database_url(
            env.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL
        ),
        config_path=config_path,
        announce_channel=env.get("WARROOM_ANNOUNCE_CHANNEL", "").strip(),
        log_level=level,
        policy=policy,
        replica_name=env.get("WARROOM_REPLICA_NAME", "").strip(),
    )


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
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (WARROOM_CONFIG points at it).") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}.") from None
    return build_policy(raw, path)


def build_policy(raw: dict[str, Any], source: str = "policy") -> Policy:
    """Validate `raw` deep-merged over the seed defaults; errors name `source` and the key."""
    defaults = _stringify_keys(Policy().model_dump(mode="json"))
    try:
        return Policy.model_validate(_merge(defaults, _stringify_keys(raw)))
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the README)"
        raise ConfigError(f"{source}: {key}: {message}.") from None

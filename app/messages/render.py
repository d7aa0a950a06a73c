"""The Jinja environment for message templates.

Autoescaping is done with a `finalize` hook: every `{{ value }}` is mrkdwn-escaped unless the
value is already `Mrkdwn`. A template author cannot forget to escape user text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from app.domain import durations
from app.messages import mrkdwn

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    return mrkdwn.escape(value)


def _finalize_plain(value: Any) -> Any:
    return "" if value is None else mrkdwn.plain(value)


def _duration(value: Any) -> mrkdwn.Mrkdwn:
    return mrkdwn.Mrkdwn(durations.humanize(value))


def _quote(value: Any) -> mrkdwn.Mrkdwn:
    """Multi-line user text as a block quote, escaped."""
    lines = str(value or "").strip().splitlines() or [""]
    return mrkdwn.Mrkdwn("\n".join("> " + mrkdwn.escape(line) for line in lines))


class Renderer:
    """Renders named templates; an operator's folder, when configured, wins file by file."""

    def __init__(self, override_dir: str = "") -> None:
        loaders = []
        if override_dir:
            loaders.append(FileSystemLoader(override_dir))
        loaders.append(FileSystemLoader(TEMPLATES))
        self.env = self._environment(ChoiceLoader(loaders), _finalize)
        # Plain-text templates (*.txt.j2, e.g. the channel topic) are shown verbatim by Slack:
        # control characters are removed instead of escaped.
        self.plain_env = self._environment(ChoiceLoader(loaders), _finalize_plain)

    @staticmethod
    def _environment(loader: ChoiceLoader, finalize: Any) -> Environment:
        env = Environment(
            loader=loader,
            finalize=finalize,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        env.filters.update(
            user=mrkdwn.user,
            channel=mrkdwn.channel,
            date=mrkdwn.date,
            link=mrkdwn.link,
            duration=_duration,
            quote=_quote,
            plain=mrkdwn.plain,
        )
        return env

    def render(self, name: str, **context: Any) -> str:
        env = self.plain_env if name.endswith(".txt.j2") else self.env
        return env.get_template(name).render(**context).strip()

    def check(self) -> None:
        """Load every template once so a broken override fails at start-up, not mid-incident."""
        for name in self.env.list_templates(extensions=["j2"]):
            self.env.get_template(name)

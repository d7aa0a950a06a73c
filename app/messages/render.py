"""The Jinja environment for message templates.

Autoescaping is done with a `finalize` hook: every `{{ value }}` is mrkdwn-escaped unless the
value is already `Mrkdwn`. A template author cannot forget to escape user text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    pass_context,
)
from jinja2.runtime import Context

from app.domain import durations
from app.messages import mrkdwn

# The built-in templates: the repository's templates/ folder, installed as this package.
BUILT_IN = "app.templates"
# What marks every message about a drill (a practice incident), and its topic.
DRILL_MARK = ":test_tube: *DRILL*"
DRILL_TOPIC = "DRILL · "
# Templates of downloadable Markdown documents, rendered by `Renderer.document`.
DOCUMENTS = frozenset({"postmortem.md.j2", "public_update.md.j2"})


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


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def _finalize_document(value: Any) -> Any:
    """Documents (Markdown files) are not mrkdwn: no escaping, but no control characters."""
    return "" if value is None else _CONTROL.sub("", str(value))


def _doc_name(context: Context, user_id: str) -> str:
    """A person's display name from the `names` the document was rendered with; the ID when
    it is not known (no Slack to ask)."""
    names = context.get("names") or {}
    return " ".join(str(names.get(user_id) or user_id).split())


@pass_context
def _doc_user(context: Context, user_id: str | None, fallback: str = "unassigned") -> str:
    return f"@{_doc_name(context, user_id)}" if user_id else fallback


def _doc_when(moment: datetime | None, zone: str = "UTC") -> str:
    if moment is None:
        return "unknown"
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@pass_context
def _doc_line(context: Context, value: Any) -> str:
    """One line of user text for a list item: mentions as @name, newlines as spaces."""
    text = _MENTION.sub(lambda m: "@" + _doc_name(context, m.group(1)), str(value or ""))
    return " ".join(text.split())


def mentioned(value: Any) -> list[str]:
    """The user IDs mentioned (`<@U…>`) in a text, in order."""
    return _MENTION.findall(str(value or ""))


_ESCAPED_MENTION = re.compile(r"&lt;@([UW][A-Z0-9]+)(?:\|[^&]*)?&gt;")


def _mentions(value: Any) -> mrkdwn.Mrkdwn:
    """User text escaped, with user mentions (`<@U…>`) kept: they name, they never broadcast."""
    return mrkdwn.Mrkdwn(_ESCAPED_MENTION.sub(r"<@\1>", mrkdwn.escape(value or "")))


class PackagedTemplates(BaseLoader):
    """Templates shipped inside a package, read with importlib.resources wherever (and however)
    the package is installed: a wheel, an editable install, a zip archive."""

    def __init__(self, package: str = BUILT_IN) -> None:
        self.package = package

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        root = self._root()
        file = root / template if root is not None else None
        if file is None or "/" in template or "\\" in template or not file.is_file():
            raise TemplateNotFound(template)
        source = file.read_text(encoding="utf-8")
        if not isinstance(file, Path):
            return source, None, lambda: True
        mtime = file.stat().st_mtime
        return source, str(file), lambda: file.is_file() and file.stat().st_mtime == mtime

    def list_templates(self) -> list[str]:
        root = self._root()
        if root is None:
            return []
        return sorted(f.name for f in root.iterdir() if f.name.endswith(".j2") and f.is_file())

    def _root(self) -> Traversable | None:
        try:
            return resources.files(self.package)
        except ModuleNotFoundError:
            return None


def _with_old_name(context: dict[str, Any]) -> dict[str, Any]:
    """The incident is `incident` in templates; `i` is its old name, the same object, kept for
    now so operators' overrides written with `i.` still render (deprecated, to be removed).
    A caller that still passes `i` alone gets `incident` too."""
    if "incident" not in context and "i" in context:
        return {**context, "incident": context["i"]}
    if "i" not in context and "incident" in context:
        return {**context, "i": context["incident"]}
    return context


class Renderer:
    """Renders named templates; an operator's folder, when configured, wins file by file."""

    def __init__(self, override_dir: str = "") -> None:
        self.built_in = PackagedTemplates()
        self.override = FileSystemLoader(override_dir) if override_dir else None
        loaders: list[BaseLoader] = [self.override] if self.override else []
        loaders.append(self.built_in)
        self.env = self._environment(ChoiceLoader(loaders), _finalize)
        # Plain-text templates (*.txt.j2, e.g. the channel topic) are shown verbatim by Slack:
        # control characters are removed instead of escaped.
        self.plain_env = self._environment(ChoiceLoader(loaders), _finalize_plain)
        # Documents people download (the postmortem) are Markdown, rendered without mrkdwn.
        self.doc_env = Environment(
            loader=ChoiceLoader(loaders),
            finalize=_finalize_document,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,
        )
        self.doc_env.filters.update(
            user=_doc_user, when=_doc_when, duration=durations.humanize, line=_doc_line
        )

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
            due=mrkdwn.due,
            clock=mrkdwn.clock,
            link=mrkdwn.link,
            duration=_duration,
            quote=_quote,
            plain=mrkdwn.plain,
            mentions=_mentions,
        )
        return env

    def render(self, name: str, **context: Any) -> str:
        """Render a message. One about a drill (`incident.is_drill`) is marked DRILL whatever
        the template says, built-in or the operator's, so practice is never taken for real."""
        plain = name.endswith(".txt.j2")
        env = self.plain_env if plain else self.env
        context = _with_old_name(context)
        text = env.get_template(name).render(**context).strip()
        if getattr(context.get("incident"), "is_drill", False):
            text = f"{DRILL_TOPIC}{text}" if plain else f"{DRILL_MARK} {text}"
        return text

    def public(self, name: str, **context: Any) -> str:
        """Plain text read outside Slack (a public status update): nothing escaped, no control
        characters; each surface escapes it for where it goes (HTML on the status page,
        mrkdwn in the Comms lead's draft)."""
        return self.doc_env.get_template(name).render(**_with_old_name(context)).strip()

    def document(self, name: str, **context: Any) -> str:
        """A Markdown document (not a Slack message): see `_finalize_document`."""
        return self.doc_env.get_template(name).render(**_with_old_name(context)).strip() + "\n"

    def names(self) -> list[str]:
        """Every template name, built-in or the operator's."""
        return self.env.list_templates(extensions=["j2"])

    def overridden(self) -> list[str]:
        """The names the operator's folder provides."""
        return self.override.list_templates() if self.override else []

    def check(self) -> None:
        """Load every template once so a broken override fails at start-up, not mid-incident;
        a package installed without its templates fails here too, not at the first command."""
        if not self.built_in.list_templates():
            raise TemplateNotFound(
                BUILT_IN, "no built-in message templates installed; reinstall warroom"
            )
        for name in self.names():
            (self.doc_env if name in DOCUMENTS else self.env).get_template(name)

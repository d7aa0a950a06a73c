"""The public status page as HTML, JSON and Atom, rendered from a `PublicPage` alone.

`build_page` (app.domain.statuspage) has already kept only what a person published; this module
only draws it. Everything in a page is treated as plain text written by someone outside the
team's control as far as the reader is concerned: component names, titles and update bodies are
escaped for the context they land in (HTML with Jinja's autoescape, XML by ElementTree, JSON by
the serializer), never interpreted as HTML or Markdown. The HTML needs no JavaScript and loads
one stylesheet, so the site can send a Content-Security-Policy that forbids scripts and inline
styles (see app/status_site.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from jinja2 import BaseLoader, Environment, StrictUndefined, TemplateNotFound
from markupsafe import Markup

from app.domain.statuspage import DayBar, Impact, PublicIncident, PublicPage

# The status page's templates: templates/status/ in the repository, installed as a folder of the
# package app.templates (package data). Not message templates: the message renderer lists only
# the package's top-level files; `warroom check` renders these separately.
PACKAGE = "app.templates"
FOLDER = "status"
PAGE_TEMPLATE = "page.html.j2"
STYLE_TEMPLATE = "style.css.j2"
DEFAULT_ACCENT = "#1f6feb"
ATOM_NS = "http://www.w3.org/2005/Atom"

_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Characters XML 1.0 cannot carry at all (an Atom reader would reject the whole feed), and
# control characters nobody means to show; tab and newline stay.
_UNSHOWABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")

# Text and background colours of each impact's label and of the overall banner, and the colour of
# its day bars. Every text pair keeps a contrast of at least 4.5:1 (WCAG AA for normal text;
# tests/unit/test_status_page_render.py measures them) and every bar at least 3:1 against the
# white page (WCAG's minimum for graphics). Colour is never the only signal: each label is
# words, and each bar has its own label and a pattern (style.css.j2).
PALETTE: dict[Impact, dict[str, str]] = {
    Impact.OPERATIONAL: {"text": "#0f5132", "background": "#d1e7dd", "bar": "#1a7f37"},
    Impact.DEGRADED: {"text": "#664d03", "background": "#fff3cd", "bar": "#9a6700"},
    Impact.PARTIAL: {"text": "#7a2e0e", "background": "#ffe5d0", "bar": "#bc4c00"},
    Impact.MAJOR: {"text": "#842029", "background": "#f8d7da", "bar": "#cf222e"},
}
PAGE_TEXT = "#1f2328"
PAGE_MUTED = "#57606a"
PAGE_BACKGROUND = "#ffffff"


# --- colours ----------------------------------------------------------------------------------


def safe_colour(value: str) -> str:
    """The colour as CSS may receive it: `#rrggbb` and nothing else. The policy already
    validates the accent colour; this guard keeps a page built some other way from writing
    anything but a colour into the stylesheet."""
    return value.lower() if _COLOUR.match(value or "") else DEFAULT_ACCENT


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a `#rrggbb` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on `background`: the better of the two always
    reaches 4.5:1, so any accent colour an operator picks keeps the header legible."""
    return (
        "#000000"
        if contrast(background, "#000000") >= contrast(background, "#ffffff")
        else "#ffffff"
    )


# --- text -------------------------------------------------------------------------------------


def showable(value: Any) -> str:
    return _UNSHOWABLE.sub("", str(value))


def paragraphs(body: str) -> list[list[str]]:
    """Plain text as paragraphs (split at blank lines) of lines: the template joins the lines of
    a paragraph with <br>, each line escaped like any other text."""
    out: list[list[str]] = []
    for block in re.split(r"\n\s*\n", showable(body).replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line.strip() for line in block.strip().split("\n")]
        if any(lines):
            out.append(lines)
    return out


def utc(moment: datetime) -> datetime:
    """Times as UTC; a naive time is taken to be UTC already (what the store keeps)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """RFC 3339 (ISO 8601) in UTC to the second: `2026-11-12T14:05:00Z`."""
    if moment is None:
        return None
    return utc(moment).isoformat(timespec="seconds").replace("+00:00", "Z")


def when(moment: datetime) -> str:
    """A time as people read it: `12 Nov 2026, 14:05 UTC`."""
    moment = utc(moment)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def day_text(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def bar_label(bar: DayBar) -> str:
    """`12 Nov 2026: Partial outage (incident 42)`: what one day bar says without its colour."""
    label = f"{day_text(bar.day)}: {bar.impact.label}"
    if bar.incidents:
        noun = "incident" if len(bar.incidents) == 1 else "incidents"
        label += f" ({noun} {', '.join(str(n) for n in bar.incidents)})"
    elif bar.impact is Impact.OPERATIONAL:
        label += ", no incidents"
    return label


def component_names(page: PublicPage) -> dict[str, str]:
    return {c.id: c.name for c in page.components}


def affected(page: PublicPage, incident: PublicIncident) -> list[tuple[str, Impact]]:
    """(component name, impact) in the page's order; a component since removed from the policy
    keeps its id as its name."""
    names = component_names(page)
    order = {c.id: n for n, c in enumerate(page.components)}
    ids = sorted(incident.components, key=lambda cid: (order.get(cid, len(order)), cid))
    return [(names.get(cid, cid), incident.components[cid]) for cid in ids]


# --- HTML -------------------------------------------------------------------------------------


class _StatusTemplates(BaseLoader):
    """The files of templates/status/, read with importlib.resources wherever the package is
    installed (a wheel, an editable install)."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        if "/" in template or "\\" in template or template.startswith("."):
            raise TemplateNotFound(template)
        try:
            file = resources.files(PACKAGE).joinpath(FOLDER, template)
        except ModuleNotFoundError:
            raise TemplateNotFound(template) from None
        if not file.is_file():
            raise TemplateNotFound(template)
        return file.read_text(encoding="utf-8"), None, lambda: True

    def list_templates(self) -> list[str]:
        return template_names()


def template_names() -> list[str]:
    """The files of templates/status/ as installed (none when the package lacks them), so
    `warroom check` can render each one."""
    try:
        folder = resources.files(PACKAGE).joinpath(FOLDER)
    except ModuleNotFoundError:
        return []
    if not folder.is_dir():
        return []
    return sorted(f.name for f in folder.iterdir() if f.is_file() and f.name.endswith(".j2"))


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, Markup):
        return value
    return showable(value)


def _environment() -> Environment:
    env = Environment(
        loader=_StatusTemplates(),
        autoescape=True,
        finalize=_finalize,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(iso=iso, when=when, day=day_text, bar_label=bar_label, paragraphs=paragraphs)
    return env


_ENV: Environment | None = None


def environment() -> Environment:
    """One environment per process: templates are compiled once."""
    global _ENV
    if _ENV is None:
        _ENV = _environment()
    return _ENV


def render_html(page: PublicPage) -> str:
    """The page a visitor reads at /status: server-rendered, no JavaScript, one stylesheet
    (`status/style.css`, relative, so the site may sit behind a path prefix)."""
    return (
        environment()
        .get_template(PAGE_TEMPLATE)
        .render(
            page=page,
            impacts=list(Impact),
            affected=lambda incident: affected(page, incident),
            css_href="status/style.css",
            feed_href="status/feed.atom",
            json_href="status.json",
        )
    )


def render_css(page: PublicPage) -> str:
    """The stylesheet: fixed rules plus the page's accent colour (a checked `#rrggbb`) and the
    black or white that reads on it."""
    accent = safe_colour(page.accent_colour)
    return (
        environment()
        .get_template(STYLE_TEMPLATE)
        .render(
            accent=accent,
            accent_text=text_on(accent),
            palette={impact.value: colours for impact, colours in PALETTE.items()},
            text=PAGE_TEXT,
            muted=PAGE_MUTED,
            background=PAGE_BACKGROUND,
        )
    )


# --- JSON -------------------------------------------------------------------------------------


def render_json(page: PublicPage) -> dict[str, Any]:
    """/status.json: the page as data, in the shape docs/status.schema.json describes. Incidents
    are the ongoing ones (newest first), then the history (most recently resolved first)."""
    return {
        "page": {
            "title": page.title,
            "url": page.url,
            "generated_at": iso(page.generated_at),
            "history_days": page.history_days,
            "overall": {"impact": page.overall.value, "description": page.overall_sentence},
        },
        "components": [
            {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "group": c.group,
                "impact": c.impact.value,
                "days": [
                    {
                        "date": d.day.isoformat(),
                        "impact": d.impact.value,
                        "incidents": list(d.incidents),
                    }
                    for d in c.days
                ],
            }
            for c in page.components
        ],
        "incidents": [_incident_json(i) for i in (*page.ongoing, *page.history)],
    }


def _incident_json(incident: PublicIncident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "title": incident.title,
        "status": incident.status.value,
        "impact": incident.peak_impact.value,
        "components": {cid: impact.value for cid, impact in sorted(incident.components.items())},
        "started_at": iso(incident.started_at),
        "resolved_at": iso(incident.resolved_at),
        "updates": [
            {"status": u.status.value, "body": u.body, "published_at": iso(u.published_at)}
            for u in incident.updates
        ],
    }


# --- Atom -------------------------------------------------------------------------------------


def render_atom(page: PublicPage, base_url: str) -> str:
    """The Atom 1.0 feed (RFC 4287): one entry per published update of the ongoing and recent
    incidents, newest first.

    `base_url` is where the site is served (`https://status.example.com`, or with a path prefix):
    links are absolute there. An entry's id is a tag URI (RFC 4151) made of the site's host, the
    update's publication date, the incident and the update's number counted from the incident's
    first update, so it never changes once published and a reader shows each update once. The
    feed's `updated` is the newest update's time, so an unchanged page gives an identical feed.
    Text is escaped by ElementTree; characters XML cannot carry are dropped first.
    """
    base = base_url.rstrip("/")
    host = urlsplit(base).hostname or "localhost"
    page_link = page.url or f"{base}/status"
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(_atom("feed"))
    _text(feed, "id", f"{base}/status")
    _text(feed, "title", page.title)
    _text(feed, "subtitle", page.overall_sentence)
    entries = sorted(
        (
            (update.published_at, incident, number, update)
            for incident in (*page.ongoing, *page.history)
            for number, update in enumerate(reversed(incident.updates), start=1)
        ),
        key=lambda e: (utc(e[0]), e[1].id, e[2]),
        reverse=True,
    )
    newest = entries[0][0] if entries else page.generated_at
    _text(feed, "updated", iso(newest) or "")
    ET.SubElement(feed, _atom("link"), rel="alternate", type="text/html", href=page_link)
    ET.SubElement(
        feed,
        _atom("link"),
        rel="self",
        type="application/atom+xml",
        href=f"{base}/status/feed.atom",
    )
    author = ET.SubElement(feed, _atom("author"))
    _text(author, "name", page.title)
    if page.logo_url:
        _text(feed, "logo", page.logo_url)
    names = component_names(page)
    for published, incident, number, update in entries:
        entry = ET.SubElement(feed, _atom("entry"))
        day = utc(published).date().isoformat()
        _text(entry, "id", f"tag:{host},{day}:status/incident/{incident.id}/update/{number}")
        _text(entry, "title", f"{incident.title} — {update.status.label}")
        _text(entry, "updated", iso(published) or "")
        _text(entry, "published", iso(published) or "")
        ET.SubElement(
            entry,
            _atom("link"),
            rel="alternate",
            type="text/html",
            href=f"{base}/status#incident-{incident.id}",
        )
        for cid in sorted(incident.components):
            ET.SubElement(entry, _atom("category"), term=cid, label=names.get(cid, cid))
        affects = ", ".join(f"{name}: {impact.label}" for name, impact in affected(page, incident))
        summary = f"{update.status.label}. {affects}." if affects else f"{update.status.label}."
        _text(entry, "summary", summary)
        _text(entry, "content", update.body).set("type", "text")
    ET.indent(feed)
    return ET.tostring(feed, encoding="unicode", xml_declaration=True) + "\n"


def _atom(tag: str) -> str:
    return f"{{{ATOM_NS}}}{tag}"


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, _atom(tag))
    element.text = showable(text)
    return element

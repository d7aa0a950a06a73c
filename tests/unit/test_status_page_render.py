"""The public status page's renderings (app/messages/status_page.py): what a hostile name or
body becomes in HTML, Atom and JSON, the feed read by a real feed parser, the JSON checked
against the published schema, the banner, the day bars' words and the colours' contrast."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import jsonschema
import pytest

from app.domain.statuspage import Impact, PublicPage, PublicStatus, PublishedUpdate
from app.messages import status_page
from app.messages.status_page import (
    PAGE_BACKGROUND,
    PAGE_MUTED,
    PAGE_TEXT,
    PALETTE,
    contrast,
    render_atom,
    render_css,
    render_html,
    render_json,
    text_on,
)
from tests.support.status_pages import (
    HOSTILE,
    HOSTILE_BODY,
    NOW,
    hostile_incident,
    policy,
    quiet_page,
    sample_page,
)

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "status.schema.json").read_text(encoding="utf-8"))
BASE = "https://status.example.com"


class Page(HTMLParser):
    """The elements, attributes and text of an HTML document, as a browser's parser sees them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())

    def tags(self) -> set[str]:
        return {tag for tag, _ in self.elements}

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.elements if t == tag]


def test_hostile_names_titles_and_bodies_are_shown_as_text_in_html() -> None:
    page = Page(render_html(sample_page()))
    for hostile in HOSTILE:
        assert hostile in page.text
    assert "script" not in page.tags() and "svg" not in page.tags()
    assert [img["src"] for img in page.all("img")] == ["https://status.example.com/logo.png"]
    handlers = [name for _, attrs in page.elements for name in attrs if name.startswith("on")]
    assert handlers == []
    assert "49" not in re.findall(r"\d+", page.text.replace("2026", ""))  # {{ 7*7 }} not run
    assert "style" not in {name for _, attrs in page.elements for name in attrs}


def test_an_update_body_is_plain_text_in_paragraphs_and_lines() -> None:
    html = render_html(sample_page())
    assert (
        "<p>Investigating &lt;script&gt;alert(1)&lt;/script&gt;<br>"
        "then &lt;img src=x onerror=alert(1)&gt;</p>" in html
    )
    assert "*not bold*</p>" in html
    assert "<p>We found the cause: a bad deploy.<br>Rolling back now.</p>" in html


def test_the_page_is_semantic_and_needs_no_script() -> None:
    html = render_html(sample_page())
    page = Page(html)
    assert html.startswith("<!DOCTYPE html>")
    assert page.all("html") == [{"lang": "en"}]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in page.all(
        "meta"
    )
    assert {"header", "main", "section", "h1", "h2", "ol", "ul", "time", "footer"} <= page.tags()
    assert len(page.all("h1")) == 1
    assert page.all("link")[0] == {"rel": "stylesheet", "href": "status/style.css"}
    for attrs in page.all("time"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", attrs["datetime"] or "")
    assert "<script" not in html.lower() and "javascript:" not in html.lower()


def test_the_banner_says_the_overall_state() -> None:
    assert '<h2 id="overall-title">Partial outage</h2>' in render_html(sample_page())
    quiet = render_html(quiet_page())
    assert '<h2 id="overall-title">All systems operational</h2>' in quiet
    assert 'class="overall overall-operational"' in quiet
    assert "No incidents in the last 90 days." in quiet
    assert "Ongoing incidents" not in quiet


def test_components_are_grouped_with_their_current_impact() -> None:
    page = Page(render_html(sample_page()))
    assert "Platform API Operational The public REST API" in page.text
    assert "Checkout Partial outage" in page.text
    assert [g for g in page.text.split() if g == "Dashboard"] == ["Dashboard"]


def test_every_day_bar_has_words_not_only_a_colour() -> None:
    page = Page(render_html(sample_page()))
    bars = [attrs for attrs in page.all("li") if "bar" in (attrs.get("class") or "").split()]
    assert len(bars) == 4 * 90
    for bar in bars:
        assert bar["title"] == bar["aria-label"]
        assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}: .+", bar["aria-label"] or "")
    labels = [bar["aria-label"] for bar in bars]
    assert "2 Nov 2026: Major outage (incident 41)" in labels
    assert "12 Nov 2026: Partial outage (incident 42)" in labels
    assert "12 Nov 2026: Operational, no incidents" in labels
    assert "89 of 90 days operational" in page.text
    assert "90 of 90 days operational" in page.text


def test_each_ongoing_update_is_shown_with_its_status_and_time() -> None:
    html = render_html(sample_page())
    assert '<time datetime="2026-11-12T14:00:00Z">12 Nov 2026, 14:00 UTC</time>' in html
    page = Page(html)
    assert "Identified 12 Nov 2026, 14:00 UTC We found the cause" in page.text
    assert "Investigating 12 Nov 2026, 13:00 UTC We are looking into checkout errors." in page.text


def test_the_feed_parses_with_one_entry_per_published_update() -> None:
    page = sample_page()
    xml = render_atom(page, BASE)
    feed = feedparser.parse(xml)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    published = [u for i in (*page.ongoing, *page.history) for u in i.updates]
    assert len(feed.entries) == len(published) == 6
    ids = [e.id for e in feed.entries]
    assert len(set(ids)) == 6
    assert all(i.startswith("tag:status.example.com,2026-") for i in ids)
    hostile = next(e for e in feed.entries if "/incident/43/" in e.id)
    assert hostile.content[0].value == HOSTILE_BODY
    assert hostile.content[0].type == "text/plain"
    for text in HOSTILE:
        assert text in hostile.title
    assert hostile.link == f"{BASE}/status#incident-43"
    times = [e.updated for e in feed.entries]
    assert times == sorted(times, reverse=True)
    assert feed.feed.updated == "2026-11-12T14:30:00Z"


def test_feed_ids_stay_when_updates_are_added() -> None:
    def entries(page: PublicPage) -> dict[str, str]:
        return {e.id: e.content[0].value for e in feedparser.parse(render_atom(page, BASE)).entries}

    page = sample_page()
    before = entries(page)
    hostile = hostile_incident()
    found = PublishedUpdate(
        PublicStatus.IDENTIFIED, "Found it.", hostile.updates[0].published_at + timedelta(minutes=5)
    )
    newer = replace(hostile, updates=(found, *hostile.updates))
    after = entries(replace(page, ongoing=tuple(newer if i.id == 43 else i for i in page.ongoing)))
    assert before.items() <= after.items()
    assert len(after) == len(before) + 1


def test_the_feed_drops_characters_xml_cannot_carry() -> None:
    incident = hostile_incident()
    bad = replace(incident, title="Nul\x00 and \x1b[31m escape")
    page = replace(sample_page(), ongoing=(bad,))
    feed = feedparser.parse(render_atom(page, BASE))
    assert not feed.bozo
    assert feed.entries[0].title.startswith("Nul and [31m escape")


def test_the_json_validates_against_the_published_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for page in (sample_page(), quiet_page()):
        data = json.loads(json.dumps(render_json(page)))
        validator.validate(data)
    data = render_json(sample_page())
    assert data["page"]["overall"] == {"impact": "partial_outage", "description": "Partial outage"}
    assert [i["id"] for i in data["incidents"]] == [43, 42, 41]
    assert data["incidents"][0]["updates"][0]["body"] == HOSTILE_BODY
    assert data["incidents"][1]["components"] == {
        "checkout": "partial_outage",
        "hostile": "degraded_performance",
    }
    api = data["components"][0]
    assert api["days"][-1] == {"date": "2026-11-12", "impact": "operational", "incidents": []}
    assert {"date": "2026-11-02", "impact": "major_outage", "incidents": [41]} in api["days"]


def test_the_schema_refuses_what_the_page_never_says() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    data = render_json(sample_page())
    data["components"][0]["impact"] = "fine"
    assert not validator.is_valid(data)


def test_text_colours_keep_a_contrast_of_4_5_to_1() -> None:
    for colours in PALETTE.values():
        assert contrast(colours["text"], colours["background"]) >= 4.5
        assert contrast(colours["bar"], PAGE_BACKGROUND) >= 3
    for colour in (PAGE_TEXT, PAGE_MUTED, "#0550ae"):
        assert contrast(colour, PAGE_BACKGROUND) >= 4.5


@pytest.mark.parametrize("accent", ["#000000", "#ffffff", "#ffff00", "#1f6feb", "#777777"])
def test_any_accent_colour_keeps_the_header_legible(accent: str) -> None:
    assert contrast(text_on(accent), accent) >= 4.5
    css = render_css(sample_page(accent_colour=accent))
    assert f"--accent: {accent};" in css
    assert f"--accent-text: {text_on(accent)};" in css


def test_only_a_colour_reaches_the_stylesheet() -> None:
    forged = replace(sample_page(), accent_colour="red;} body{display:none")
    css = render_css(forged)
    assert "display:none" not in css
    assert f"--accent: {status_page.DEFAULT_ACCENT};" in css


def test_a_page_without_logo_url_or_groups() -> None:
    page = Page(render_html(sample_page(logo_url="", url="")))
    assert page.all("img") == []
    assert "Platform" in page.text


def test_impact_labels_are_the_domains() -> None:
    html = render_html(sample_page())
    for impact in Impact:
        assert (
            f'<span class="swatch bar-{impact.value}" aria-hidden="true"></span> {impact.label}'
            in html
        )
    assert NOW.year == 2026 and policy().history_days == 90

"""`warroom check`: each thing that must be true for the bot to work, said plainly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError
from sqlalchemy import func
from sqlmodel import col, select

from app.config import ConfigError, Settings
from app.domain.alerts import route_problems
from app.domain.lifecycle import Status
from app.domain.paging import PagerDutyTarget
from app.domain.policy import Policy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.domain.statuspage import (
    Impact,
    PublicIncident,
    PublicPage,
    PublicStatus,
    PublishedUpdate,
    StatusPagePolicy,
    build_page,
)
from app.integrations.pagers import Pagers
from app.integrations.slack_web import SlackGateway, make_client
from app.messages import status_page
from app.messages.mrkdwn import Mrkdwn
from app.messages.render import BUILT_IN, DOCUMENTS, Renderer
from app.services.ports import PagerError, SlackError
from app.store.db import Database
from app.store.models import OutboxMessage, PagerCall
from app.store.startup import DatabaseProblem, require_schema

PAGERDUTY_KEY_LENGTH = 32
SECRET_HINTS = {
    "pagerduty": "PagerDuty: Services -> the service -> Integrations -> Events API V2 -> "
    "Integration Key",
    "opsgenie": "Opsgenie: Settings -> Integrations -> an API integration -> API Key",
    "webhook": "the secret the receiving end checks signatures with",
}
SERVE_MIGRATES = "`warroom serve` also migrates the database when it starts"
TOKEN_FIXES = {
    "SLACK_BOT_TOKEN": (
        "copy the Bot User OAuth Token (OAuth & Permissions), which starts with xoxb-"
    ),
    "SLACK_APP_TOKEN": (
        "copy an App-Level Token (Basic Information -> App-Level Tokens, scope "
        "connections:write), which starts with xapp-"
    ),
}


async def run_checks(settings: Settings, live: bool = False) -> int:
    problems = 0

    def ok(text: str) -> None:
        print(f"  ok   {text}")

    def bad(text: str, fix: str) -> None:
        nonlocal problems
        problems += 1
        print(f"  FAIL {text}\n       -> {fix}")

    print("Warroom configuration check")
    ok(f"policy: {settings.config_path or 'built-in defaults (the seed process)'}")
    for text, fix in alert_problems(settings):
        bad(text, fix)
    for text, fix in pager_problems(settings):
        bad(text, fix)
    for text in pager_notes(settings):
        ok(text)
    for text, fix in statuspage_problems(settings):
        bad(text, fix)
    for text in statuspage_notes(settings):
        ok(text)
    rendered, failures = render_templates(settings.policy)
    for text, fix in failures:
        bad(text, fix)
    for text in template_problems(settings.policy, settings.config_path or "policy"):
        bad(text, "name a template that exists (built in, or in workspace.templates_dir)")
    if settings.policy.playbooks:
        ok(f"{len(settings.policy.playbooks)} playbook(s) valid")
    if rendered:
        ok(rendered)
    queued: int | None = None
    try:
        revision = await require_schema(settings.database_url)
        ok(f"database answers (revision {revision})")
    except DatabaseProblem as exc:
        bad(str(exc), exc.fix or SERVE_MIGRATES)
    except Exception as exc:  # the check reports, it does not crash
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        bad(f"database: {first}", "check DATABASE_URL and that the server is running")
    else:
        db = Database(settings.database_url)
        try:
            queued = await _queued_messages(db)
            for text, fix in await refused_pages(db):
                bad(text, fix)
        finally:
            await db.dispose()
    if live:
        for good, text, fix in await test_pagers(settings):
            if good:
                ok(text)
            else:
                bad(text, fix)
    if not settings.bot_token:
        bad("SLACK_BOT_TOKEN is not set", "copy the Bot User OAuth Token into .env")
        return 1
    for problem in settings.token_problems():
        bad(problem, TOKEN_FIXES[problem.split()[0]])
    if not settings.signing_secret and not settings.app_token:
        bad(
            "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is set",
            "set SLACK_APP_TOKEN for Socket Mode or SLACK_SIGNING_SECRET for HTTP mode",
        )
    client = make_client(settings.bot_token, settings.api_url)
    gateway = SlackGateway(client, pacing=settings.slack_pacing)
    try:
        auth = await gateway.auth_test()
        ok(f"Slack token works: bot @{auth.get('user')} in {auth.get('team')}")
    except SlackError as exc:
        if exc.uncertain:  # no answer: DNS, a proxy, a firewall; the token was never read
            bad(
                f"cannot reach Slack at {settings.api_url}: {exc.reason}",
                "check SLACK_API_URL, DNS and the network (a proxy or firewall on the way)",
            )
        elif exc.transient:
            bad(f"Slack did not answer auth.test ({exc.code})", "try again in a minute")
        else:
            held = (
                f"; the bot holds {queued} queued message(s) and sends them once Slack accepts it"
                if queued
                else ""
            )
            bad(
                f"Slack refused the token ({exc.code})",
                "copy the Bot User OAuth Token (xoxb-...) again; reinstall the app if it was "
                "revoked" + held,
            )
        return 1
    try:
        channel = await gateway.find_channel(settings.announce)
    except SlackError as exc:
        bad(f"could not list channels ({exc.code})", "add the channels:read scope and reinstall")
        channel = None
    else:
        if channel:
            ok(f"announcement channel #{settings.announce} found ({channel})")
        else:
            bad(
                f"announcement channel #{settings.announce} not found",
                "create it, or set WARROOM_ANNOUNCE_CHANNEL to an existing channel",
            )
    for name in triage_channels(settings.policy):
        try:
            found = await gateway.find_channel(name)
        except SlackError as exc:
            bad(f"could not look up #{name} ({exc.code})", "add the channels:read scope")
            continue
        if found:
            ok(f"alert triage channel #{name} found ({found})")
        else:
            bad(
                f"alert triage channel #{name} not found",
                "create it, or change [alerts] triage_channel or the route's channel",
            )
    print("All good." if not problems else f"{problems} problem(s) to fix.")
    return 0 if not problems else 1


def alert_problems(settings: Settings) -> list[tuple[str, str]]:
    """Alert sources whose secret is not set, and routes that can never apply."""
    alerts = settings.policy.alerts
    problems: list[tuple[str, str]] = []
    for name, source in alerts.sources.items():
        names = [env for env in (source.token_env, source.hmac_env) if env]
        if not any(settings.alert_secrets.get(env) for env in names):
            problems.append(
                (
                    f"alert source {name!r}: {' / '.join(names)} is not set, so every webhook "
                    "from it is refused (401)",
                    f"set {names[0]} to the token its sender presents (Authorization: Bearer)",
                )
            )
    for text in route_problems(alerts):
        problems.append((f"[[alerts.routes]]: {text}", "reorder the routes or remove it"))
    return problems


def pager_problems(settings: Settings) -> list[tuple[str, str]]:
    """Pager targets whose secret is missing or cannot be right."""
    problems: list[tuple[str, str]] = []
    for name, target in settings.policy.paging.targets.items():
        secret = settings.pager_secrets.get(target.secret_env, "")
        if not secret:
            problems.append(
                (
                    f"pager target {name!r}: {target.secret_env} is not set, so its pages "
                    "cannot go out",
                    f"set {target.secret_env} ({SECRET_HINTS[target.provider]})",
                )
            )
        elif isinstance(target, PagerDutyTarget) and len(secret) != PAGERDUTY_KEY_LENGTH:
            problems.append(
                (
                    f"pager target {name!r}: {target.secret_env} holds {len(secret)} "
                    f"characters; a PagerDuty integration key has {PAGERDUTY_KEY_LENGTH}",
                    f"copy the Integration Key again ({SECRET_HINTS['pagerduty']})",
                )
            )
    return problems


def statuspage_problems(settings: Settings) -> list[tuple[str, str]]:
    """A status page that cannot work as configured."""
    page = settings.policy.statuspage
    problems: list[tuple[str, str]] = []
    if not page.enabled:
        return problems
    if not page.components:
        problems.append(
            (
                "statuspage is enabled but names no components: the page has nothing to show",
                "add [statuspage.components.<id>] entries (docs/status-page.md)",
            )
        )
    if page.publishes_to_atlassian and page.atlassian is not None:
        env = page.atlassian.api_key_env
        if not settings.statuspage_secrets.get(env):
            problems.append(
                (
                    f"statuspage: {env} is not set, so published updates cannot reach "
                    "Atlassian Statuspage",
                    f"set {env} to an API key (Statuspage: your avatar > API info)",
                )
            )
        unmapped = sorted(set(page.components) - set(page.atlassian.component_ids))
        if unmapped:
            problems.append(
                (
                    f"statuspage: components {', '.join(unmapped)} have no Atlassian "
                    "component id, so Statuspage never shows their status",
                    "map them in [statuspage.atlassian] component_ids",
                )
            )
    return problems


def statuspage_notes(settings: Settings) -> list[str]:
    page = settings.policy.statuspage
    if not page.enabled:
        return []
    where = (
        f"Atlassian Statuspage page {page.atlassian.page_id}"
        if page.publishes_to_atlassian and page.atlassian
        else "the built-in page (/status)"
    )
    auto = (
        f"; Sev{', Sev'.join(str(s) for s in page.auto_publish)} auto-published"
        if page.auto_publish
        else "; every public update approved by a person"
    )
    return [f"status page: {len(page.components)} component(s) on {where}{auto}"]


def pager_notes(settings: Settings) -> list[str]:
    paging = settings.policy.paging
    if not paging.targets:
        return []
    names = ", ".join(f"{n} ({paging.provider_name(n)})" for n in paging.targets)
    notes = [f"pager targets: {names}"]
    uses_pagerduty = any(t.provider == "pagerduty" for t in paging.targets.values())
    if uses_pagerduty and not settings.pager_secrets.get(paging.pagerduty_webhook_secret_env):
        notes.append(
            f"{paging.pagerduty_webhook_secret_env} is not set: acknowledgments made in "
            "PagerDuty are not heard (optional; see docs/paging.md)"
        )
    return notes


async def refused_pages(db: Database) -> list[tuple[str, str]]:
    """Pages a provider refused (a key it does not take, a call it calls invalid) in the last
    day: each is a page that did not reach anyone."""
    since = datetime.now(UTC) - timedelta(days=1)
    try:
        async with db.session() as session:
            result = await session.exec(
                select(PagerCall)
                .where(col(PagerCall.created_at) >= since)
                .where(
                    (col(PagerCall.state) == "failed")
                    | ((col(PagerCall.state) == "pending") & col(PagerCall.told))
                )
                .order_by(col(PagerCall.id))
            )
            rows = list(result.all())
    except Exception:
        return []
    seen: dict[str, tuple[str, str]] = {}
    for row in rows:
        what = "refused" if row.state == "failed" else "not taken yet"
        seen.setdefault(
            row.target,
            (
                f"pager target {row.target!r}: a page ({row.action}, incident "
                f"#{row.incident_id}) was {what}: {row.outcome}",
                "fix the target's key or settings; `/incident escalations` shows each page",
            ),
        )
    return list(seen.values())


async def test_pagers(settings: Settings) -> list[tuple[bool, str, str]]:
    """`--live`: a test call to each target that has one; the others are named."""
    paging = settings.policy.paging
    if not paging.targets:
        return []
    pagers = Pagers(paging, settings.pager_secrets)
    results: list[tuple[bool, str, str]] = []
    try:
        for name in paging.targets:
            if not pagers.configured(name):
                continue  # already reported
            if not pagers.supports_test(name):
                results.append(
                    (
                        True,
                        f"pager target {name!r}: no test event sent ("
                        f"{paging.provider_name(name)} has none that pages nobody)",
                        "",
                    )
                )
                continue
            try:
                said = await pagers.test(name)
            except PagerError as exc:
                results.append(
                    (False, f"pager target {name!r}: test call failed: {exc.detail}", "check it")
                )
            else:
                results.append((True, f"pager target {name!r}: test call {said}", ""))
    finally:
        await pagers.close()
    return results


def triage_channels(policy: Policy) -> list[str]:
    """The channels triage cards go to, when any alert source is configured."""
    alerts = policy.alerts
    if not alerts.sources:
        return []
    names = [alerts.channel_for(r) for r in alerts.routes if r.action in ("triage", "notify")]
    return list(dict.fromkeys([*names, alerts.triage_channel]))


async def _queued_messages(db: Database) -> int | None:
    """Messages waiting in the outbox (not yet sent, not dropped); None if it cannot say (a
    database not migrated yet)."""
    try:
        async with db.session() as session:
            result = await session.exec(
                select(func.count())
                .select_from(OutboxMessage)
                .where(col(OutboxMessage.state).in_(["pending", "sending"]))
            )
            return int(result.one())
    except Exception:
        return None


def render_templates(policy: Policy) -> tuple[str, list[tuple[str, str]]]:
    """Render every template with sample data, as the bot would: a syntax error, a missing
    template or a field the bot does not pass shows here, not mid-incident.

    Returns what went well (empty when something failed) and each failure with its fix.
    """
    folder = policy.workspace.templates_dir
    renderer = Renderer(folder)
    if not renderer.built_in.list_templates():
        return "", [
            (
                f"no message templates found: the installed package has no {BUILT_IN}",
                "reinstall warroom from a package built with its templates/ folder",
            )
        ]
    samples = template_samples(policy)
    replaced = renderer.overridden()
    failures: list[tuple[str, str]] = []
    for name in sorted(set(samples) | set(renderer.names())):
        fix = f"fix {name}" + (f" in {folder}" if name in replaced else "")
        try:
            for context in samples.get(name, []):
                if name in DOCUMENTS:
                    renderer.document(name, **context)
                else:
                    renderer.render(name, **context)
            if name not in samples:  # an operator's extra file (e.g. one others include)
                renderer.env.get_template(name)
        except TemplateNotFound as exc:
            missing = "not found" if exc.name == name else f"needs {exc.name}, not found"
            failures.append((f"template {name} {missing}", fix))
        except TemplateSyntaxError as exc:
            failures.append((f"template {name} line {exc.lineno}: {exc.message}", fix))
        except Exception as exc:
            failures.append((f"template {name}: {getattr(exc, 'message', None) or exc}", fix))
    status_count, status_failures = render_status_templates(policy)
    failures += status_failures
    if failures:
        return "", failures
    return (
        f"{len(samples)} message templates and {status_count} status page templates render "
        "with sample data" + (f" ({len(replaced)} from {folder})" if replaced else "")
    ), []


def render_status_templates(policy: Policy) -> tuple[int, list[tuple[str, str]]]:
    """Render the public status page's templates (templates/status/) with sample pages: the
    operator's page with nothing published, and a page with components, an ongoing and a
    resolved incident. Returns how many templates there are and each failure with its fix."""
    names = status_page.template_names()
    fix = "reinstall warroom from a package built with its templates/status/ folder"
    if not names:
        where = f"{status_page.PACKAGE}/{status_page.FOLDER}"
        return 0, [(f"no status page templates found: the installed package has no {where}", fix)]
    pages = status_samples(policy)
    renders = {
        status_page.PAGE_TEMPLATE: status_page.render_html,
        status_page.STYLE_TEMPLATE: status_page.render_css,
    }
    failures: list[tuple[str, str]] = []
    for name in names:
        label = f"status page template {status_page.FOLDER}/{name}"
        try:
            if name in renders:
                for page in pages:
                    renders[name](page)
            else:  # a file the others include: it must at least compile
                status_page.environment().get_template(name)
        except TemplateSyntaxError as exc:
            failures.append((f"{label} line {exc.lineno}: {exc.message}", fix))
        except Exception as exc:
            failures.append((f"{label}: {getattr(exc, 'message', None) or exc}", fix))
    failures += [
        (f"status page template {status_page.FOLDER}/{name} not found", fix)
        for name in sorted(set(renders) - set(names))
    ]
    return len(names), failures


def status_samples(policy: Policy) -> list[PublicPage]:
    """Pages shaped as the status site builds them (`build_page`): the operator's own, with
    nothing published, and a sample with every kind of content."""
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    sample = StatusPagePolicy.model_validate(
        {
            "enabled": True,
            "title": "Example Status",
            "url": "https://status.example.com/status",
            "logo_url": "https://status.example.com/logo.png",
            "components": {
                "api": {"name": "API", "description": "The public API", "group": "Platform"},
                "checkout": {"name": "Checkout", "group": "Platform"},
                "dashboard": {"name": "Dashboard"},
            },
        }
    )
    start = now - timedelta(hours=2)
    ongoing = PublicIncident(
        id=2,
        title="Checkout errors",
        status=PublicStatus.IDENTIFIED,
        components={"checkout": Impact.PARTIAL, "api": Impact.DEGRADED},
        started_at=start,
        resolved_at=None,
        updates=(
            PublishedUpdate(PublicStatus.IDENTIFIED, "A bad deploy.\n\nRolling back.", now),
            PublishedUpdate(PublicStatus.INVESTIGATING, "Looking into it.", start),
        ),
    )
    resolved = PublicIncident(
        id=1,
        title="API outage",
        status=PublicStatus.RESOLVED,
        components={"api": Impact.MAJOR},
        started_at=now - timedelta(days=3),
        resolved_at=now - timedelta(days=3) + timedelta(hours=1),
        updates=(
            PublishedUpdate(PublicStatus.RESOLVED, "Fixed.", now - timedelta(days=3, minutes=-60)),
            PublishedUpdate(PublicStatus.INVESTIGATING, "Down.", now - timedelta(days=3)),
        ),
    )
    return [
        build_page(policy.statuspage, [], now),
        build_page(sample, [ongoing, resolved], now),
    ]


def template_samples(policy: Policy) -> dict[str, list[dict[str, Any]]]:
    """Representative data for each built-in template, shaped as the bot passes it: a fresh
    incident and one with every field set, empty and full lists, each branch's flags."""
    from app.domain.fields import Shown
    from app.services.announcements import _UpdateView
    from app.services.briefing import Briefing, update_view
    from app.services.escalations import describe_key
    from app.services.postmortem import PLACEHOLDER
    from app.services.timeline import Entry
    from app.slack.listeners.commands import TABLE
    from app.store.models import ActionItem, ChecklistTask, EscalationRow, StatusUpdate

    alice, bob, carol = "U0SAMPLE1", "U0SAMPLE2", "U0SAMPLE3"
    links = [
        ("generatorURL", "http://prometheus.example.com/graph"),
        ("runbook_url", "javascript:x"),
    ]
    start = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    alert_list = [
        {"source": "prom", "title": "Disk almost full", "fired": start, "cleared": None},
        {"source": "prom", "title": "Disk | full", "fired": start, "cleared": start},
    ]

    def at(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    fresh = IncidentSnapshot(
        id=42,
        title="Checkout API returning 500s",
        severity=2,
        status=Status.INVESTIGATING,
        description="",
        service="",
        is_private=False,
        declared_by=alice,
        detected_at=at(-7),
        declared_at=at(0),
        channel_id="C0SAMPLE1",
        channel_name="incident-42",
        next_update_at=at(60),
        roles={Role.COMMANDER: alice},
    )
    full = replace(
        fresh,
        status=Status.RESOLVED,
        description="Card payments fail for customers in the EU",
        service="checkout-api",
        is_private=True,
        acknowledged_at=at(3),
        acknowledged_by=bob,
        mitigated_at=at(40),
        resolved_at=at(75),
        resolved_by=alice,
        last_update_at=at(30),
        next_update_at=None,
        root_cause="A connection pool limit lowered in the 9:15 deploy",
        impact_summary="Checkout failed for 38% of requests for 68 minutes",
        users_affected="about 1,200 orders",
        next_steps="Alert on pool saturation",
        source_permalink="https://example.slack.com/archives/C0SAMPLE2/p1773480600000100",
        roles={Role.COMMANDER: alice, Role.TECH_LEAD: bob, Role.COMMS: carol},
        type="security",
        fields={"team": ["payments", "search"], "owner": bob},
    )
    incidents = [fresh, full]
    # Before Slack lets the war room be created: messages leave the channel out.
    unbuilt = replace(fresh, channel_id=None, channel_name=None)
    pages_seen = [
        {
            "target": "Payments primary (PagerDuty)",
            "action": "trigger",
            "state": "sent",
            "at": at(5),
            "reason": "escalation step 1: no acknowledgment",
            "outcome": "accepted",
            "attempts": 0,
            "remote_state": "acknowledged",
            "remote_by": "Jane <Doe>",
            "remote_at": at(7),
        },
        {
            "target": "Backup (Opsgenie)",
            "action": "trigger",
            "state": "pending",
            "at": at(5),
            "reason": "paged by hand",
            "outcome": "Opsgenie answered HTTP 503",
            "attempts": 2,
            "remote_state": None,
            "remote_by": None,
            "remote_at": None,
        },
    ]
    sev = policy.severity(fresh.severity)
    ladder = policy.ladder(fresh.severity)
    step_say = ladder[0].say if ladder else "Escalating."
    checklist = ladder[0].checklist if ladder else ["Confirm the customer impact"]
    open_item = ActionItem(
        id=7,
        incident_id=42,
        text="Alert on checkout 5xx rate",
        owner=bob,
        due_on=date(2026, 3, 20),
        created_by=alice,
        created_at=at(80),
    )
    done_item = ActionItem(
        id=8,
        incident_id=42,
        text="Document the rollback | with a table character",
        created_by=alice,
        created_at=at(81),
        done_at=at(90),
        done_by=carol,
    )
    items = [open_item, done_item]
    open_task = ChecklistTask(
        id=3,
        incident_id=42,
        playbook="database-outage",
        run_key="playbook:database-outage:3",
        position=0,
        text="Check replication lag | and failover",
        role="tech_lead",
        due_at=at(15),
        created_at=at(0),
    )
    done_task = ChecklistTask(
        id=4,
        incident_id=42,
        playbook="database-outage",
        run_key="playbook:database-outage:3",
        position=1,
        text="Freeze schema migrations",
        created_at=at(0),
        done_at=at(9),
        done_by=bob,
    )
    tasks = [open_task, done_task]
    update = StatusUpdate(
        incident_id=42,
        status="identified",
        done_so_far="Rolled back the 9:15 deploy",
        investigation="Watching the error rate recover",
        eta="30 minutes",
        posted_by=bob,
        posted_at=at(30),
    )
    bare_update = StatusUpdate(
        incident_id=42, status="investigating", posted_by=alice, posted_at=at(5)
    )
    entries = [
        Entry(at(0), "declared", "Declared", "Sev2 declared", alice),
        Entry(
            at(12),
            "message",
            "Pinned message",
            f"<@{bob}> the pool is at its limit",
            bob,
            "https://example.slack.com/archives/C0SAMPLE1/p1773481320000100",
        ),
        Entry(at(75), "status_changed", "Status", "Resolved", None),
    ]
    rows = [
        EscalationRow(
            incident_id=42,
            key="page:2",
            kind="page",
            due_at=at(0),
            state="fired",
            cancel_on="acknowledged",
            fired_at=at(0),
        ),
        EscalationRow(
            incident_id=42,
            key="ladder:1",
            kind="ladder",
            step=0,
            due_at=at(15),
            state="pending",
            cancel_on="acknowledged",
            attempts=1,
        ),
        EscalationRow(
            incident_id=42,
            key="update_reminder",
            kind="update_reminder",
            due_at=at(60),
            state="cancelled",
            cancel_on="resolved",
            outcome="resolved",
        ),
    ]
    rows_seen = [{**row.model_dump(), "label": describe_key(row.key)} for row in rows]
    mentions = Mrkdwn(f"<@{bob}> <@{carol}>")

    briefings = [
        Briefing(now=at(1)),
        Briefing(
            now=at(90),
            updates=[update_view(update), update_view(bare_update)],
            next_update=at(60),
            open_items=[open_item],
            alerts={"firing": 1, "cleared": 1, "first": at(0)},
            recent=entries,
            notes=entries[1:2],
        ),
    ]

    # An incident type and custom fields as messages show them (`custom_fields`): the full
    # incident has them, the fresh one has none.
    custom = [
        Shown("team", "Team", "multi_select", "payments, search"),
        Shown("owner", "Service owner", "user", bob, user=bob),
        Shown("dashboard", "Dashboard <main>", "link", "https://grafana.example.com/d/1?a=1&b=2"),
        Shown("customers", "Customers affected", "number", "1200"),
    ]

    def typed(incident: IncidentSnapshot) -> dict[str, Any]:
        full_one = incident.type != ""
        return {
            "kind": "Security & <Privacy>" if full_one else "",
            "fields": custom if full_one else [],
        }

    def about(incident: IncidentSnapshot, **extra: Any) -> dict[str, Any]:
        """What `Announcements.render` passes: the incident, its severity, the links, the
        workspace's time zone, its type and custom fields."""
        return {
            "incident": incident,
            "sev": policy.severity(incident.severity),
            "links": policy.links,
            "zone": policy.workspace.timezone,
            **typed(incident),
            **extra,
        }

    def each(**extra: Any) -> list[dict[str, Any]]:
        return [about(incident, **extra) for incident in (unbuilt, *incidents)]

    return {
        "acknowledged.md.j2": [
            about(full, by=bob, within_target=True),
            about(full, by=bob, within_target=False),
        ],
        "action_added.md.j2": [{"incident": fresh, "a": a, "by": alice} for a in items],
        "action_assigned.md.j2": [{"incident": fresh, "a": a, "by": alice} for a in items],
        "action_done.md.j2": [{"incident": full, "a": done_item, "by": carol}],
        "action_item.md.j2": [
            {"a": open_item, "overdue": True, "show_incident": True},
            {"a": done_item, "overdue": False, "show_incident": False},
        ],
        "action_list.md.j2": [
            {"incident": fresh, "items": items, "mine": False},
            {"incident": fresh, "items": [], "mine": False},
            {"incident": None, "items": [open_item], "mine": True},
            {"incident": None, "items": [], "mine": True},
        ],
        "action_reminder.md.j2": [{"incident": full, "a": open_item}],
        "announcement_headline.md.j2": each(),
        "catchup.md.j2": [
            about(incident, **b.context()) for incident, b in zip(incidents, briefings, strict=True)
        ]
        + [about(unbuilt, **briefings[0].context())],
        "checklist.md.j2": [
            {"incident": fresh, "playbook": "database-outage", "tasks": tasks},
            {"incident": full, "playbook": "security", "tasks": [open_task]},
        ],
        "checklist_task.md.j2": [{"t": t, "zone": policy.workspace.timezone} for t in tasks],
        "checklist_status.md.j2": [
            {"incident": fresh, "tasks": tasks, "now": at(20), "zone": policy.workspace.timezone},
            {"incident": full, "tasks": [], "now": at(20), "zone": policy.workspace.timezone},
        ],
        "checklist_nudge.md.j2": [
            about(fresh, t=open_task, holder=bob, role=policy.role(Role.TECH_LEAD).name),
            about(fresh, t=open_task, holder=None, role=""),
        ],
        "playbook_database.md.j2": each(),
        "playbook_rollback.md.j2": each(),
        "playbook_security.md.j2": each(),
        "playbook_provider.md.j2": each(),
        "closing_summary.md.j2": [
            about(full, by=alice, open_items=1, skipped_postmortem=False, archive_after=0),
            about(full, by=alice, open_items=0, skipped_postmortem=True, archive_after=60),
            about(unbuilt, by=alice, open_items=0, skipped_postmortem=False, archive_after=0),
        ],
        "escalation_channel.md.j2": [
            about(
                fresh,
                say=step_say,
                number=1,
                mentions=mentions,
                unconfigured="vp_ops",
                suggest=Mrkdwn(f"<@{carol}>"),
                checklist=checklist,
                pagers="Payments primary (PagerDuty)",
            ),
            about(
                fresh,
                say="Escalating.",
                number=2,
                mentions=Mrkdwn(""),
                unconfigured="",
                suggest=Mrkdwn(""),
                checklist=[],
                pagers="",
            ),
        ],
        "escalation_dm.md.j2": each(say=step_say),
        "escalations_status.md.j2": [
            about(fresh, rows=rows_seen, pages=pages_seen),
            about(full, rows=[], pages=[]),
        ],
        "acknowledged_on_pager.md.j2": [about(full, who="Jane <Doe>", where="PagerDuty")],
        "pager_targets.md.j2": [
            about(
                fresh,
                targets=[{"name": "payments", "label": "Payments", "provider": "PagerDuty"}],
            ),
            about(fresh, targets=[]),
        ],
        "help.md.j2": [
            {
                "sections": TABLE.sections(),
                "restricted": set(policy.permissions.restricted),
                "severities": policy.severities,
            }
        ],
        "handover_brief.md.j2": [
            about(incident, role=policy.role(r), previous=p, by=alice, **b.context())
            for incident, b in zip(incidents, briefings, strict=True)
            for r, p in [(Role.COMMANDER, alice), (Role.COMMS, None), (Role.TECH_LEAD, carol)]
        ]
        + [
            about(
                unbuilt,
                role=policy.role(Role.COMMS),
                previous=None,
                by=alice,
                **briefings[0].context(),
            )
        ],
        "handover_told.md.j2": [
            about(fresh, role=policy.role(Role.COMMANDER), user=bob, previous=alice, by=alice),
            about(full, role=policy.role(Role.COMMS), user=bob, previous=carol, by=alice),
            about(unbuilt, role=policy.role(Role.COMMS), user=bob, previous=carol, by=alice),
        ],
        "home_roles.md.j2": [
            {"held": []},
            {
                "held": [
                    (fresh, policy.role(Role.COMMANDER).name),
                    (full, policy.role(Role.TECH_LEAD).name),
                    (unbuilt, policy.role(Role.COMMS).name),
                ]
            },
        ],
        "incident_list.md.j2": [
            {"incidents": [], "now": at(90)},
            {"incidents": [unbuilt, *incidents], "now": at(90)},
            {
                "incidents": incidents,
                "now": at(90),
                "described": {incident.id: typed(incident) for incident in incidents[1:]},
            },
        ],
        "initial_notification.md.j2": each(),
        "mitigated.md.j2": [about(full, by=alice)],
        "alert_card.md.j2": [
            {
                "title": "Disk almost full <on> db1",
                "firing": firing,
                "cleared": cleared,
                "since": at(0),
                "source": "prom",
                "severity": 3,
                "truncated": truncated,
                "labels": [{"name": "service", "value": "db"}],
                "alerts": [
                    {"title": "Disk almost full on db1", "firing": True, "links": links},
                    {"title": "Disk almost full on db2", "firing": False, "links": []},
                ],
                "more": more,
                "incident_id": incident,
                "dismissed_by": dismissed,
                "dismissed_reason": "Known flapping check",
            }
            for firing, cleared, truncated, more, incident, dismissed in [
                (2, 0, 0, 0, None, None),
                (1, 1, 3, 5, 42, None),
                (0, 2, 0, 0, None, alice),
            ]
        ],
        "alert_summary.md.j2": [
            {
                "source": "prom",
                "fired": [{"title": "ApiSlow on api2", "firing": True, "links": links}],
                "cleared": [{"title": "ApiDown on api1", "firing": False, "links": []}],
                "firing": 1,
            },
            {"source": "prom", "fired": [], "cleared": [], "firing": 0},
        ],
        "alerts_cleared.md.j2": [
            about(full, commander=alice, mitigated=False),
            about(full, commander=alice, mitigated=True),
        ],
        "page_channel.md.j2": [
            about(fresh, mentions=mentions, pagers=""),
            about(fresh, mentions=Mrkdwn(""), pagers="Payments primary (PagerDuty)"),
            about(fresh, mentions=Mrkdwn(""), pagers=""),
        ],
        "page_dm.md.j2": each(),
        "postmortem.md.j2": [
            {
                "incident": incident,
                "sev": sev,
                "roles": [(policy.role(r).name, incident.roles.get(r)) for r in Role],
                "timeline": timeline,
                "actions": actions,
                "checklist": checklist_tasks,
                "alerts": alerts,
                "tz": policy.workspace.timezone,
                "placeholder": PLACEHOLDER,
                **typed(incident),
            }
            for incident, timeline, actions, alerts, checklist_tasks in [
                (full, entries, items, alert_list, tasks),
                (fresh, [], [], [], []),
            ]
        ],
        "resolution.md.j2": [
            about(full),
            about(
                replace(full, root_cause="", impact_summary="", users_affected="", next_steps="")
            ),
        ],
        "retro_agenda.md.j2": each(hours=policy.escalation.retro_within_hours),
        "retro_reminder.md.j2": [about(full, hours=policy.escalation.retro_within_hours)],
        "role_assigned.md.j2": [about(fresh, user=bob, role=policy.role(Role.TECH_LEAD), by=alice)],
        "role_brief.md.j2": [
            *(about(fresh, role=policy.role(r), pagers=[]) for r in Role),
            about(unbuilt, role=policy.role(Role.TECH_LEAD), pagers=[]),
            about(
                fresh,
                role=policy.role(Role.COMMANDER),
                pagers=[
                    {"after": None, "unless": "resolved", "targets": "Payments (PagerDuty)"},
                    {"after": 5, "unless": "acknowledged", "targets": "Backup (Opsgenie)"},
                ],
            ),
        ],
        "severity_changed.md.j2": [about(fresh, old=3, by=alice)],
        "status_summary.md.j2": each(),
        "timeline.md.j2": [about(full, entries=entries), about(fresh, entries=[])],
        "topic.txt.j2": [
            about(fresh, names={"commander": "alice", "tech_lead": "-", "comms": "-"}),
            about(full, names={"commander": "alice", "tech_lead": "bob", "comms": "carol"}),
        ],
        "update.md.j2": [
            about(full, u=_UpdateView(update)),
            about(fresh, u=_UpdateView(bare_update)),
        ],
        "update_reminder.md.j2": [
            about(fresh, cadence=sev.update_every_minutes or 60, public_ago=None),
            about(full, cadence=30, public_ago=timedelta(minutes=12)),
        ],
        "update_due.md.j2": [
            about(fresh, left=timedelta(minutes=5), public_ago=None),
            about(fresh, left=timedelta(minutes=5), public_ago=timedelta(minutes=3)),
        ],
        "public_update.md.j2": [
            {
                "reason": reason,
                "status": status,
                "components": components,
                "impact": "partial outage",
                "next_update_minutes": minutes,
                "page_title": "Example status",
            }
            for reason, status, minutes in (
                ("declared", "investigating", 30),
                ("update", "identified", 30),
                ("update", "monitoring", None),
                ("resolved", "resolved", None),
            )
            for components in ([], [{"name": "Checkout", "impact": "partial outage"}])
        ],
        "update_missed.md.j2": [about(fresh), about(replace(fresh, roles=full.roles))],
        "update_missed_dm.md.j2": [about(fresh), about(unbuilt)],
    }


# --- playbooks ------------------------------------------------------------------------------


def playbook_lint(path: str) -> list[str]:
    """`warroom playbooks lint`: every problem of the policy file's playbooks (and of the rest
    of the file, which they depend on), one line each naming the key."""
    from app.config import build_policy, policy_problems, read_policy_file

    source = path or "policy"
    try:
        raw = read_policy_file(path) if path else {}
    except ConfigError as exc:
        return [str(exc)]
    problems = policy_problems(raw, source)
    if problems:
        return problems
    policy = build_policy(raw, source)
    return template_problems(policy, source)


def template_problems(policy: Policy, source: str = "policy") -> list[str]:
    """Each playbook `post` naming a template that does not exist or does not render with a
    sample incident."""
    folder = policy.workspace.templates_dir
    if folder and not Path(folder).is_dir():
        return [f"{source}: workspace.templates_dir: {folder!r} is not a folder."]
    renderer = Renderer(folder)
    names = set(renderer.names())
    sample = _sample_incident()
    problems: list[str] = []
    for n, book in enumerate(policy.playbooks):
        for s, step in enumerate(book.steps):
            if step.post is None:
                continue
            key = f"{source}: playbooks.{n}.steps.{s}.post"
            if step.post not in names:
                where = f"the built-in templates or {folder}" if folder else "the templates"
                problems.append(f"{key}: unknown template {step.post!r} (not in {where}).")
                continue
            try:
                renderer.render(
                    step.post,
                    incident=sample,
                    sev=policy.severity(sample.severity),
                    links=policy.links,
                    zone=policy.workspace.timezone,
                )
            except Exception as exc:
                message = " ".join(str(getattr(exc, "message", None) or exc).split())
                problems.append(f"{key}: template {step.post} does not render: {message}.")
    return problems


def _sample_incident(
    severity: int = 2, type_: str = "", service: str = "checkout-api"
) -> IncidentSnapshot:
    at = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    return IncidentSnapshot(
        id=42,
        title="Checkout API returning 500s",
        severity=severity,
        status=Status.INVESTIGATING,
        description="",
        service=service,
        is_private=False,
        declared_by="U0SAMPLE1",
        detected_at=at,
        declared_at=at,
        channel_id="C0SAMPLE1",
        channel_name="incident-42",
        roles={Role.COMMANDER: "U0SAMPLE1"},
        type=type_,
    )


def dry_run(policy: Policy, type_: str, severity: int, service: str = "") -> list[str]:
    """`warroom playbooks dry-run`: which playbooks would run when an incident of this type,
    severity and service is declared, and what each step would do. Conditions on custom
    fields and alert labels cannot be known before an incident has them: they are said, not
    checked."""
    from app.domain.playbooks import matches

    snap = _sample_incident(severity, "" if type_ in {"", "default"} else type_, service)
    what = f"type {type_ or 'default'}, Sev{severity}" + (f", service {service}" if service else "")
    lines = [f"An incident declared with {what}:"]
    found = 0
    for book in policy.playbooks:
        unknown = {"fields": book.when.fields, "alert_labels": book.when.alert_labels}
        loose = book.model_copy(
            update={"when": book.when.model_copy(update={"fields": {}, "alert_labels": {}})}
        )
        if not matches(loose, snap, "declared"):
            continue
        found += 1
        once = "once per incident" if book.once else "on every occurrence"
        delay = book.when.after_minutes
        when = f"{delay} min after the declaration" if delay else "at the declaration"
        lines.append(f"Playbook {book.name} ({when}, {once})")
        for name, values in unknown.items():
            for key, wanted in values.items():
                lines.append(f"  only if {name}.{key} is {' or '.join(wanted)} (not checked)")
        for index, step in enumerate(book.steps, 1):
            first, *rest = _step_lines(policy, step)
            lines += [f"  {index}. {first}", *(f"       - {line}" for line in rest)]
    if not found:
        lines.append("No playbook applies.")
    return lines


def _step_lines(policy: Policy, step: Any) -> list[str]:
    directory = policy.directory
    if step.invite is not None:
        people = [
            f"{f} ({', '.join(directory.members([f])) or 'nobody in [directory]'})"
            for f in step.invite.functions
        ]
        who = [*step.invite.users, *step.invite.groups, *people]
        return [f"invite {', '.join(who)}"]
    if step.post is not None:
        return [f"post the message {step.post}"]
    if step.checklist is not None:
        lines = [f"post a checklist of {len(step.checklist)} task(s) with Done buttons:"]
        for task in step.checklist:
            extra = [f"role {task.role.value}" if task.role else "no role"]
            if task.due_minutes:
                extra.append(f"due {task.due_minutes} min after it is posted")
            lines.append(f"{task.text} ({', '.join(extra)})")
        return lines
    if step.bookmark is not None:
        return [f"bookmark {step.bookmark.title}: {step.bookmark.url}"]
    targets = [
        f"{name} ({policy.paging.targets[name].label or name})"
        if name in policy.paging.targets
        else name
        for name in step.page or []
    ]
    return [f"page {', '.join(targets)}"]

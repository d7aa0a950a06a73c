"""`/incident …`: every subcommand, declared once in the command table with its handler.

The listener parses the text and acknowledges at once (parse errors, `help` and an immediate
declare's validation are answered in the acknowledgment itself), then runs the entry's handler
and answers privately. Entries that act on an incident find it (`#42`, `42` or the channel) and
establish sight first: a private incident does not exist for people outside it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.domain.fields import label
from app.domain.statuspage import Impact
from app.messages import stats as stats_text
from app.messages.mrkdwn import escape
from app.services import custom_fields
from app.services.action_items import ActionRequest
from app.services.custom_fields import MissingFields
from app.services.errors import InvalidInput
from app.services.inbox import NotRecorded
from app.services.incidents import DeclareRequest, validate_declare
from app.services.metrics import stats
from app.slack import grammar, views
from app.slack.command_table import Call, CommandTable, Section, request_key
from app.slack.grammar import Command, CommandError
from app.slack.listeners import checklist, gate, modals, review
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)

TABLE = CommandTable()
command = TABLE.command


def parse(text: str) -> Command:
    """The text after `/incident`, read with this table."""
    return grammar.parse(text, TABLE)


# --- the table ------------------------------------------------------------------------------


@command(
    "declare",
    usage="declare [<sev>] [<type>:] [<title>]",
    example="/incident declare sev2 Checkout API returning 500s",
    summary="Declare: alone (or `/incident` with nothing after it) opens the form; "
    "`/incident declare sev2 Checkout API returning 500s` declares at once, "
    "`/incident declare sev2 security: Leaked key in logs` as an incident type (the severity "
    "may be left out when the type has a default).",
    section=Section.DECLARE,
    parser=grammar.declare,
    opens_form=True,
)
async def declare_form(call: Call) -> None:
    # An immediate declare (with a severity) never gets here: it runs from the acknowledgment.
    meta = views.metadata(
        reply_url=call.body.get("response_url"), channel=call.body.get("channel_id")
    )
    view = views.declare_modal(call.bot.services.policy, meta)
    await call.bot.services.slack.open_view(call.body["trigger_id"], view)


@command(
    "drill",
    usage="drill [<sev>] [<type>:] [<title>]",
    example="/incident drill sev2 Checkout API returning 500s",
    summary="A practice incident in its own `drill-<id>` channel, every message marked DRILL: "
    "pages and escalations reach only the people in the drill, no announcement, no metrics. "
    "Alone it opens the form with Drill ticked. A drill stays a drill.",
    section=Section.DECLARE,
    parser=grammar.drill,
    opens_form=True,
)
async def drill_form(call: Call) -> None:
    # An immediate drill (with a severity) never gets here: it runs from the acknowledgment.
    meta = views.metadata(
        reply_url=call.body.get("response_url"), channel=call.body.get("channel_id")
    )
    view = views.declare_modal(call.bot.services.policy, meta, drill=True)
    await call.bot.services.slack.open_view(call.body["trigger_id"], view)


@command(
    "ack",
    usage="ack [42]",
    summary="Acknowledge. Once per incident; the status does not change.",
    section=Section.INCIDENT,
    aliases=("acknowledge",),
    elsewhere="/incident ack 42",
    action="ack",
)
async def ack(call: Call) -> None:
    await call.bot.flows.acknowledge(call.incident, call.user, call.reply.say)


@command(
    "role",
    usage="role [#42] <role> @person",
    example="/incident role commander|tech-lead|comms @person",
    summary="Give `commander`, `tech-lead` or `comms` to someone; the previous holder's "
    "assignment ends.",
    section=Section.INCIDENT,
    elsewhere="/incident role commander @person 42",
    action="roles",
    parser=grammar.role,
)
async def role(call: Call) -> None:
    assert call.command.role and call.command.user
    await call.bot.flows.assign_role(
        call.incident, call.command.role, call.command.user, call.user, call.reply.say
    )


@command(
    "roles",
    usage="roles [42]",
    summary="Form with all three roles.",
    section=Section.INCIDENT,
    elsewhere="/incident roles 42",
    action="roles",
    opens_form=True,
)
async def roles(call: Call) -> None:
    await modals.open_form(
        call.bot, views.ROLES, call.incident, call.body["trigger_id"], call.reply
    )


@command(
    "handover",
    usage="handover [#42] @person [<role>]",
    example="/incident handover @person [commander|tech-lead|comms]",
    summary="Hand a role over (the commander's unless you name `tech-lead` or `comms`): the "
    "new holder gets a handover brief by DM (state, what was tried, open items, the next "
    "update due), the previous holder is told, and the timeline records it.",
    section=Section.INCIDENT,
    elsewhere="/incident handover @person commander 42",
    action="roles",
    parser=grammar.handover,
)
async def handover(call: Call) -> None:
    assert call.command.role and call.command.user
    await call.bot.flows.handover(
        call.incident, call.command.role, call.command.user, call.user, call.reply.say
    )


@command(
    "update",
    usage="update [#42] [<text>]",
    example="/incident update <text>",
    summary="Without text, the update form (status, what was done, investigation status, "
    "ETA, next update in); with text, post it as the investigation status and promise the "
    "next update within the severity's cadence.",
    section=Section.INCIDENT,
    elsewhere="/incident update #42 <text>",
    action="update",
    parser=grammar.number_then_text("update"),
    opens_form=True,
)
async def update(call: Call) -> None:
    if not call.command.text:
        await modals.open_form(
            call.bot, views.UPDATE, call.incident, call.body["trigger_id"], call.reply
        )
        return
    await call.bot.flows.quick_update(
        call.incident, call.command.text, call.user, call.reply.say, call.request_key
    )


@command(
    "severity",
    usage="severity [#42] <sev>",
    example="/incident severity sev1",
    summary="Change severity: announced, topic updated, the new severity's people invited "
    "and paged.",
    section=Section.INCIDENT,
    aliases=("sev",),
    elsewhere="/incident severity sev1 42",
    action="severity",
    parser=grammar.severity,
)
async def severity(call: Call) -> None:
    assert call.command.severity
    await call.bot.flows.change_severity(
        call.incident, call.command.severity, call.user, call.reply.say
    )


@command(
    "set",
    usage="set [#42] <field> <value>",
    example="/incident set <field> <value>",
    summary="Set a custom field (`[fields]` in the policy), on the timeline; a bad value is "
    "refused with the values the field takes.",
    section=Section.INCIDENT,
    elsewhere="/incident set #42 team payments",
    action="update",
    parser=grammar.set_field,
)
async def set_field(call: Call) -> None:
    policy = call.bot.services.policy
    name, value = call.command.kind, call.command.text
    if not value:
        spec = policy.fields.get(name)
        takes = (
            f" {label(name, spec)} takes one of: {', '.join(spec.options)}."
            if (spec and spec.options)
            else ""
        )
        await call.reply.say(f"Give the value too: `/incident set {escape(name)} <value>`.{takes}")
        return
    change = await call.bot.incidents.set_field(call.incident, name, value, call.user)
    spec = policy.fields[name]
    if not change.changed:
        await call.reply.say(f"{label(name, spec)} already says that on #{call.incident}.")
        return
    await call.reply.say(f":label: {label(name, spec)} set on Incident #{call.incident}.")


@command(
    "status",
    usage="status [42]",
    summary="Summary only you can see.",
    section=Section.INCIDENT,
    elsewhere="/incident status 42",
)
async def status(call: Call) -> None:
    snap = await call.bot.incidents.snapshot(call.incident)
    alerts = await call.bot.alerts.counts(snap.id)
    await call.reply.say(call.bot.rooms.render("status_summary.md.j2", snap, alerts=alerts))


@command(
    "catchup",
    usage="catchup [42]",
    summary="Catch up, privately: severity, status, roles, the last update, the next update "
    "due, open action items, firing alerts and the last five timeline entries. People who "
    "join the channel get it by DM (once per 30 minutes).",
    section=Section.INCIDENT,
    aliases=("catch-up",),
    elsewhere="/incident catchup 42",
)
async def catchup(call: Call) -> None:
    await call.reply.say(await call.bot.flows.catchups.text(call.incident))


@command(
    "mitigate",
    usage="mitigate [42]",
    summary="Mark mitigated (impact has stopped).",
    section=Section.INCIDENT,
    elsewhere="/incident mitigate 42",
    action="mitigate",
)
async def mitigate(call: Call) -> None:
    await call.bot.flows.mitigate(call.incident, call.user, call.reply.say)


@command(
    "resolve",
    usage="resolve [42]",
    summary="Resolution form: root cause, impact summary, users affected, next steps.",
    section=Section.INCIDENT,
    aliases=("resolved",),
    elsewhere="/incident resolve 42",
    action="resolve",
    opens_form=True,
)
async def resolve(call: Call) -> None:
    await modals.open_form(
        call.bot, views.RESOLVE, call.incident, call.body["trigger_id"], call.reply
    )


@command(
    "escalations",
    usage="escalations [42]",
    summary="The escalation ladder, privately: what fired, what is next and when.",
    section=Section.INCIDENT,
    aliases=("escalation",),
    elsewhere="/incident escalations 42",
)
async def escalations(call: Call) -> None:
    await call.reply.say(await call.bot.flows.escalations_text(call.incident))


@command(
    "page",
    usage="page [#42] <target> [message]",
    summary="Page a pager target (PagerDuty, Opsgenie, webhook) by hand; with no target, "
    "lists the targets.",
    section=Section.INCIDENT,
    elsewhere="/incident page #42 payments-primary",
    action="page",
    parser=grammar.number_then_text("page"),
)
async def page(call: Call) -> None:
    target, _, message = call.command.text.partition(" ")
    if not target:
        snap = await call.bot.incidents.snapshot(call.incident)
        await call.reply.say(call.bot.rooms.render("pager_targets.md.j2", snap, **_targets(call)))
        return
    key = call.request_key or f"command:{uuid.uuid4()}"
    await call.bot.flows.page(
        call.incident, target.lower(), call.user, message.strip(), key, call.reply.say
    )


def _targets(call: Call) -> dict[str, Any]:
    paging = call.bot.services.policy.paging
    return {
        "targets": [
            {"name": name, "label": paging.label(name), "provider": paging.provider_name(name)}
            for name in paging.targets
        ]
    }


@command(
    "publish",
    usage="publish [#42] [<text>]",
    summary="Without text, a draft of a public status update, by DM, to publish, edit or "
    "skip; with text, publish it to the status page now (never for private incidents).",
    section=Section.INCIDENT,
    elsewhere="/incident publish #42 <text>",
    action="publish",
    parser=grammar.number_then_text("publish"),
)
async def publish(call: Call) -> None:
    public = call.bot.public
    key = call.request_key
    if call.command.text:
        decision = await public.publish_text(call.incident, call.command.text, call.user, key)
        if decision.now:
            await call.bot.flows.deliver(call.incident, None)
        await call.reply.say(public.published_text())
        return
    decision = await public.draft_now(call.incident, call.user, key)
    await call.bot.flows.deliver(call.incident, None)
    if decision.now:
        await call.reply.say(":memo: A draft is in your DMs: publish, edit or skip it there.")


@command(
    "components",
    usage="components [#42] [<component>[:<impact>] …]",
    summary="The status page components the incident affects, each with its impact "
    "(degraded, partial, major; default from the severity); `none` clears them; without "
    "words, lists them.",
    section=Section.INCIDENT,
    aliases=("component",),
    elsewhere="/incident components #42 api checkout:major",
    action="update",
    parser=grammar.number_then_text("components"),
)
async def components(call: Call) -> None:
    public = call.bot.public
    words = call.command.text.split()
    if not words:
        current = await public.components_of(call.incident)
        said = ", ".join(
            f"{escape(public.policy.components[c].name)} ({label})"
            for c, label in current.items()
            if c in public.policy.components
        )
        await call.reply.say(
            f"Incident #{call.incident} affects: {said or 'no component named'}.\n"
            + public.components_help()
        )
        return
    chosen = await public.set_components(call.incident, words, call.user)
    said = ", ".join(
        f"{escape(public.policy.components[c].name)} ({Impact(v).label.lower()})"
        for c, v in chosen.items()
    )
    await call.reply.say(
        f":globe_with_meridians: Incident #{call.incident} affects: {said or 'nothing'}. "
        "The next public draft says so."
    )


@command(
    "retro",
    usage="retro [42]",
    summary="Post the retrospective agenda in the channel and the announcement's thread.",
    section=Section.INCIDENT,
    aliases=("retrospective",),
    elsewhere="/incident retro 42",
    action="retro",
    parser=grammar.retro,
)
async def retro(call: Call) -> None:
    await call.bot.flows.post_retro_agenda(
        call.incident, call.user, call.reply.say, call.request_key
    )


@command(
    "retro_done",
    word="retro",
    usage="retro done [42]",
    summary="Record that the retrospective was held (`retro held` works too).",
    section=Section.INCIDENT,
    elsewhere="/incident retro done 42",
    action="retro",
)
async def retro_done(call: Call) -> None:
    await call.bot.flows.retro_held(call.incident, call.user, call.reply.say, call.request_key)


@command(
    "note",
    usage="note [#42] <text>",
    example="/incident note <text>",
    summary="Add a line to the timeline.",
    section=Section.AFTER,
    aliases=("notes",),
    elsewhere="/incident note #42 <text>",
    action="note",
    parser=grammar.number_then_text("note"),
)
async def note(call: Call) -> None:
    # A replay (same trigger ID) is answered alike and notes nothing more.
    await call.bot.timeline.note(call.incident, call.command.text, call.user, call.request_key)
    await call.reply.say(f":memo: Noted on the timeline of Incident #{call.incident}.")


@command(
    "timeline",
    usage="timeline [42]",
    summary="The timeline, privately, in time order.",
    section=Section.AFTER,
    elsewhere="/incident timeline 42",
)
async def timeline(call: Call) -> None:
    await call.reply.say(await review.timeline_text(call.bot, call.incident))


@command(
    "checklist",
    usage="checklist [42]",
    summary="The playbooks' checklist tasks, privately: what is done, by whom, and what is "
    "overdue.",
    section=Section.INCIDENT,
    aliases=("checklists", "tasks"),
    elsewhere="/incident checklist 42",
)
async def checklist_progress(call: Call) -> None:
    await call.reply.say(await checklist.progress(call.bot, call.incident))


@command(
    "action",
    usage="action [#42] <text> [@owner] [due YYYY-MM-DD]",
    example="/incident action <text> [@owner] [due YYYY-MM-DD]",
    summary="Add an action item; the owner gets a DM. Owner and date go last, in either order.",
    section=Section.AFTER,
    elsewhere="/incident action #42 <text> @owner due 2025-12-01",
    action="action",
    parser=grammar.action,
)
async def action(call: Call) -> None:
    request = ActionRequest(call.command.text, call.command.user, call.command.due)
    change = await call.bot.actions.add(call.incident, request, call.user, call.request_key)
    await review.after_change(call.bot, change, call.reply)
    await call.reply.say(f":clipboard: Action item A{change.item.id} added to #{call.incident}.")


@command(
    "actions",
    usage="actions [42]",
    summary="The incident's action items with Done and Reassign buttons.",
    section=Section.AFTER,
    elsewhere="/incident actions 42",
    parser=grammar.actions,
)
async def actions(call: Call) -> None:
    await call.reply.send(await review.incident_items(call.bot, call.incident))


@command(
    "postmortem",
    usage="postmortem [42]",
    summary="Share the postmortem document (Markdown) in the channel, after resolution.",
    section=Section.AFTER,
    aliases=("pm", "postmortems"),
    elsewhere="/incident postmortem 42",
    action="postmortem",
)
async def postmortem(call: Call) -> None:
    await call.bot.postmortems.publish(call.incident, call.user)
    await call.reply.say(f":page_facing_up: Postmortem of Incident #{call.incident} shared.")


@command(
    "close",
    usage="close [42] [--force]",
    example="/incident close [--force]",
    summary="Close a resolved incident and archive its channel; needs a postmortem unless "
    "`--force`.",
    section=Section.AFTER,
    elsewhere="/incident close 42",
    action="close",
    parser=grammar.close,
)
async def close(call: Call) -> None:
    await call.bot.flows.close(call.incident, call.user, call.command.force, call.reply.say)


@command(
    "list",
    usage="list",
    summary="Open incidents you may see, Sev1 first (drills only if you are in them).",
    section=Section.ANYWHERE,
    aliases=("ls",),
    parser=grammar.nothing("list"),
)
async def list_incidents(call: Call) -> None:
    await call.reply.say(await list_text(call.bot, call.user))


@command(
    "actions_mine",
    word="actions",
    usage="actions mine",
    summary="Your open action items across incidents.",
    section=Section.ANYWHERE,
)
async def actions_mine(call: Call) -> None:
    await call.reply.send(await review.my_items(call.bot, call.user))


@command(
    "stats",
    usage="stats [<window>] [<field>=<value>]",
    example="/incident stats [7d|30d|90d] [field=value]",
    summary="Response metrics by severity over `7d`, `30d` (the default) or `90d`; "
    "`team=payments` counts only incidents with that custom field value.",
    section=Section.ANYWHERE,
    aliases=("stat", "metrics"),
    parser=grammar.stats,
)
async def stats_command(call: Call) -> None:
    days = call.command.days or 30
    bot = call.bot
    # Private incidents count only for the people who may see them.
    rows = await stats(
        bot.db,
        bot.services.policy,
        bot.services.clock.now(),
        days,
        seen=lambda incidents: bot.services.access.visible(incidents, call.user),
        filters=call.command.filters,
    )
    await call.reply.say(stats_text.mrkdwn(rows, days, _filters_text(call)))


def _filters_text(call: Call) -> str:
    policy = call.bot.services.policy
    return ", ".join(
        f"{label(name, policy.fields[name])} = {value}" for name, value in call.command.filters
    )


@command(
    "help",
    usage="help",
    summary="The command list. Any unknown word shows it too.",
    section=Section.ANYWHERE,
    parser=grammar.nothing("help"),
)
async def help_command(call: Call) -> None:
    # Answered in the acknowledgment (see `handle`); kept as an entry for help and the README.
    await call.reply.say(help_text(call.bot, call.command))


# --- the listener ---------------------------------------------------------------------------


def register(bot: Bot) -> None:
    gate.on_command(bot, "/incident", lambda ack, body: handle(bot, ack, body))


async def handle(bot: Bot, ack: AsyncAck, body: dict[str, Any]) -> None:
    """Answer what can be answered at once in the acknowledgment; record anything else in the
    inbox before acknowledging it, then carry it out after the acknowledgment (in its turn, see
    app.slack.inflight) and let the record go."""
    reply = Replier(bot.services.slack, body.get("user_id", ""), body.get("response_url"))
    try:
        command = parse(body.get("text") or "")
        if command.name == "help":
            await ack(text=help_text(bot, command))
            return
        work = _work(bot, command, body, reply)
    except (CommandError, InvalidInput) as exc:
        await ack(text=":no_entry_sign: " + error_text(exc))
        return
    try:
        recorded = await bot.inbox.record_before_ack(_inbox_key(body), "command", gate.kept(body))
    except NotRecorded:
        await ack(text=NOT_STORED)
        return
    await ack()
    if recorded is None:
        return  # the same request is already recorded, and being carried out

    async def carry_out() -> None:
        await gate.run(reply, work)
        try:
            await bot.inbox.done(recorded)
        except Exception:
            log.exception("inbox request %s carried out but not forgotten", recorded)

    # Only the bare form of an entry opens a form (`update` without text, `declare` alone).
    form = TABLE[command.name].opens_form and not command.text and command.severity is None
    bot.inflight.later(carry_out, opens_form=form)


NOT_STORED = gate.NOT_STORED
# Attempts after which a request recorded but never finished is given up, and its sender told.
MAX_ATTEMPTS = 3


def _work(
    bot: Bot, command: Command, body: dict[str, Any], reply: Replier
) -> Callable[[], Awaitable[None]]:
    """What the command does after the acknowledgment; bad input raises before it."""
    if command.name in ("declare", "drill") and command.text:
        req = _quick_declare(bot, command, body)
        return lambda: bot.flows.declare(req)
    return lambda: dispatch(bot, command, body, reply)


def _quick_declare(bot: Bot, command: Command, body: dict[str, Any]) -> DeclareRequest:
    """`/incident declare [<sev>] [<type>:] <title>`, checked before the acknowledgment."""
    policy = bot.services.policy
    kind, title = grammar.split_type(command, policy.types)
    example = TABLE[command.name].example
    if command.severity is None and not kind:
        raise CommandError(f"Start with the severity, then the title: `{example}`.")
    if not title:
        raise CommandError(f"Add a title after the type: `/incident {command.name} {kind}: …`.")
    spec = policy.incident_type(kind)
    severity = command.severity or (spec.default_severity if spec else None)
    if severity is None:
        raise CommandError(
            f"{custom_fields.type_label(policy, kind)} incidents have no default severity; "
            f"start with one: `/incident {command.name} sev2 {kind}: {title[:40]}`."
        )
    req = DeclareRequest(
        title=title,
        severity=severity,
        type=kind,
        is_drill=command.name == "drill",
        declared_by=body.get("user_id", ""),
        request_key=request_key(body),
        source_channel_id=body.get("channel_id"),
        reply_url=body.get("response_url"),
    )
    try:
        validate_declare(req, bot.services.clock.now(), policy)
    except MissingFields as exc:
        kind = custom_fields.type_label(policy, req.type or policy.default_type)
        needed = ", ".join(label(n, policy.fields[n]) for n in exc.names)
        raise InvalidInput(
            f"{kind + ' incidents' if kind else 'Incidents'} need {needed} when declared: "
            f"declare with the form (`/incident {command.name}` alone)."
        ) from None
    return req


def _inbox_key(body: dict[str, Any]) -> str:
    return f"command:{body.get('trigger_id') or uuid.uuid4().hex}"


async def carry_out_unfinished(bot: Bot) -> None:
    """Commands, clicks and forms acknowledged by a process that died before carrying them
    out: carry them out now (each is idempotent by its request key; clicks and forms go
    through the gate again, sight included), or tell the sender after repeated failures."""
    for row in await bot.inbox.take_over():
        assert row.id is not None
        body = row.body
        if row.kind == gate.INTERACTION:
            if row.attempts > MAX_ATTEMPTS:
                log.error("inbox request %s given up after %d attempts", row.id, row.attempts - 1)
            await gate.carry_out(bot, body, given_up=row.attempts > MAX_ATTEMPTS)
            await bot.inbox.done(row.id)
            continue
        reply = Replier(bot.services.slack, body.get("user_id", ""), body.get("response_url"))
        if row.attempts > MAX_ATTEMPTS:
            log.error("inbox request %s given up after %d attempts", row.id, row.attempts - 1)
            text = escape(str(body.get("text") or ""))[:200]
            await reply.say(
                f":warning: `/incident {text}` could not be carried out (Warroom restarted "
                "while doing it, more than once). Check the incident, then send it again."
            )
        else:
            log.warning("carrying out a command acknowledged before a restart (%s)", row.key)
            try:
                work = _work(bot, parse(body.get("text") or ""), body, reply)
            except (CommandError, InvalidInput) as exc:
                await reply.error(exc)
            else:
                await gate.run(reply, work)
        await bot.inbox.done(row.id)


def help_text(bot: Bot, command: Command) -> str:
    restricted = set(bot.services.policy.permissions.restricted)
    text = bot.services.renderer.render(
        "help.md.j2",
        sections=TABLE.sections(),
        restricted=restricted,
        severities=bot.services.policy.severities,
    )
    if command.text:
        text = f"Unknown command `{escape(command.text[:50])}`.\n" + text
    return text


async def dispatch(bot: Bot, command: Command, body: dict[str, Any], reply: Replier) -> None:
    entry = TABLE[command.name]
    user = body.get("user_id", "")
    incident_id: int | None = None
    if entry.needs_incident:
        # A private incident does not exist for people outside its channel.
        if command.incident:
            incident_id = (await gate.incident(bot, command.incident, user)).id
        else:
            snap = await bot.incidents.snapshot_in_channel(body.get("channel_id", ""))
            if snap is None:
                await reply.say(
                    f"Run `/incident {escape(entry.word)}` in an incident channel, or add the "
                    f"number: `{escape(entry.elsewhere or '')}`."
                )
                return
            await bot.services.access.require_sight(snap, user)
            incident_id = snap.id
    await entry.handler(Call(bot, command, body, user, reply, incident_id))


async def list_text(bot: Bot, user: str) -> str:
    access = bot.services.access
    incidents = await access.listed(await bot.incidents.open_incidents(), user)
    return bot.services.renderer.render(
        "incident_list.md.j2",
        incidents=incidents,
        now=bot.services.clock.now(),
        described=custom_fields.described(bot.services.policy, incidents),
    )

"""Form submissions. Field checks that need no database answer inside the modal
(`response_action=errors`), and so does the update form's status against the incident's
status now (one bounded read); everything else happens after the acknowledgment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.domain.escalation import MAX_PROMISE_MINUTES, default_promise_minutes
from app.domain.fields import BadValue, parse_value
from app.domain.lifecycle import UPDATE_STATUSES
from app.domain.permissions import MOVES
from app.domain.roles import Role
from app.services.errors import InvalidInput, ServiceError
from app.services.incidents import (
    DeclareRequest,
    ResolveRequest,
    UpdateRequest,
    clean,
    stale_form,
    status_choice,
    validate_declare,
)
from app.slack import views
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    def declare_request(view: dict[str, Any], user: str) -> DeclareRequest:
        meta = views.read_metadata(view)
        v = views.values(view)
        return DeclareRequest(
            title=v.get("title") or "",
            severity=int(v.get("severity") or 0),
            type=v.get(views.TYPE) or "",
            fields=views.field_values(bot.services.policy, v),
            only_applying=True,
            declared_by=user,
            description=v.get("description") or "",
            service=v.get("service") or "",
            is_private="private" in (v.get("private") or []),
            is_drill=views.DRILL_OPTION in (v.get(views.DRILL_OPTION) or []),
            commander=v.get("commander"),
            detected_at=v.get("detected_at"),
            request_key=f"view:{view.get('id')}",
            components=tuple(v.get(views.COMPONENTS) or ()),
            source_channel_id=meta.get("source_channel"),
            source_ts=meta.get("source_ts"),
            reply_url=meta.get("reply_url"),
        )

    def declare_errors(view: dict[str, Any]) -> dict[str, str]:
        try:
            validate_declare(
                declare_request(view, ""), bot.services.clock.now(), bot.services.policy
            )
        except InvalidInput as exc:
            return {exc.field or "title": error_text(exc)}
        return {}

    async def declare(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        req = declare_request(body["view"], seen.user)
        await _declare(bot, req)
        # Declared from a triage card: the alert group joins the incident.
        group = views.read_metadata(body["view"]).get("alert_group")
        if isinstance(group, int) and req.request_key:
            await bot.alerts.adopt(group, req.request_key)

    gate.on_submit(bot, views.DECLARE, gate.NOTHING, declare, check=declare_errors)

    def update_request(view: dict[str, Any]) -> UpdateRequest:
        v = views.values(view)
        picked_status = views.parse_status_value(v.get("status"))
        if picked_status is None:  # not one the form offers: refused in the form (update_errors)
            raise InvalidInput(status_choice(), "status")
        # The status left as the form showed it keeps whatever status the incident has when
        # the update is stored (a mitigation since the form opened is not reverted); a status
        # picked is a move, refused if the status changed since (`stale_form`).
        shown = views.parse_status_value(views.read_metadata(view).get("status"))
        status = None if picked_status is shown else picked_status
        picked = v.get(views.NEXT_UPDATE)
        minutes = views.parse_minutes(picked)
        if picked and (minutes is None or not 1 <= minutes <= MAX_PROMISE_MINUTES):
            raise InvalidInput("Pick when the next update will come.", views.NEXT_UPDATE)
        return UpdateRequest(
            status=status,
            done_so_far=v.get("done_so_far") or "",
            investigation=v.get("investigation") or "",
            eta=v.get("eta") or "",
            next_update_minutes=minutes,
            components=(tuple(v.get(views.COMPONENTS) or ()) if views.COMPONENTS in v else None),
            shown=shown,
        )

    def update_errors(view: dict[str, Any]) -> dict[str, str]:
        try:
            req = update_request(view)
        except InvalidInput as exc:
            return {exc.field or "status": error_text(exc)}
        if not (req.done_so_far.strip() or req.investigation.strip() or req.eta.strip()):
            return {"investigation": "Say where the investigation stands, or what was done."}
        return {}

    async def update(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        view = body["view"]
        key = f"view:{view.get('id')}"
        await bot.flows.post_update(
            seen.incident_id, update_request(view), seen.user, key, reply.say
        )

    async def update_now_errors(body: dict[str, Any]) -> dict[str, str]:
        """A status move picked against a status that changed since the form opened is
        refused in the form, so the person sees it with their text still there."""
        req = update_request(body["view"])
        if req.status is None or req.shown is None:
            return {}
        try:
            seen = await gate.establish(bot, gate.INCIDENT_FORM, body, body["user"]["id"])
        except ServiceError:
            return {}  # not seen: refused on the usual path, in the usual words
        if seen is None or seen.incident is None or seen.incident.status in (req.shown, req.status):
            return {}
        return {"status": error_text(stale_form(seen.incident_id, req.shown, seen.incident.status))}

    gate.on_submit(
        bot,
        views.UPDATE,
        gate.INCIDENT_FORM,
        update,
        check=update_errors,
        current=update_now_errors,
    )

    def resolve_request(view: dict[str, Any]) -> ResolveRequest:
        v = views.values(view)
        return ResolveRequest(
            root_cause=v.get("root_cause") or "",
            impact_summary=v.get("impact_summary") or "",
            users_affected=v.get("users_affected") or "",
            next_steps=v.get("next_steps") or "",
            fields=views.field_values(bot.services.policy, v),
        )

    def resolve_errors(view: dict[str, Any]) -> dict[str, str]:
        req = resolve_request(view)
        errors = _length_errors({k: v for k, v in req.__dict__.items() if k != "fields"})
        for name, raw in req.fields.items():
            try:
                parse_value(name, bot.services.policy.fields[name], raw)
            except BadValue as exc:
                errors[views.field_block(name)] = str(exc)
        return errors

    async def resolve(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        req = resolve_request(body["view"])
        await bot.flows.resolve(seen.incident_id, req, seen.user, reply.say)

    gate.on_submit(
        bot,
        views.RESOLVE,
        gate.INCIDENT_FORM,
        resolve,
        check=resolve_errors,
    )

    async def assign(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        v = views.values(body["view"])
        for role in Role:
            if holder := v.get(role.value):
                await bot.flows.assign_role(seen.incident_id, role, holder, seen.user, reply.say)

    gate.on_submit(bot, views.ROLES, gate.INCIDENT_FORM, assign)


async def _declare(bot: Bot, req: DeclareRequest) -> None:
    if req.source_channel_id and req.source_ts:
        permalink = await bot.services.slack.permalink(req.source_channel_id, req.source_ts)
        req = DeclareRequest(**{**req.__dict__, "source_permalink": permalink})
    await bot.flows.declare(req)


def _length_errors(fields: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in fields.items():
        try:
            clean(value, 500 if name == "users_affected" else 3000, name)
        except InvalidInput as exc:
            errors[name] = str(exc)
    return errors


async def open_form(bot: Bot, kind: str, incident_id: int, trigger_id: str, reply: Replier) -> None:
    """Open the update, resolve or roles form for an incident."""
    snap = await bot.incidents.snapshot(incident_id)
    if kind != views.ROLES and not snap.status.is_open:
        await reply.say(f"Incident #{incident_id} is {snap.status.value}.")
        return
    # Refuse before the form is filled in, not after (the submission is checked again).
    action = {views.UPDATE: "update", views.RESOLVE: "resolve"}.get(kind, "roles")
    await bot.services.access.check(action, reply.user, snap)
    meta = views.metadata(incident=incident_id, reply_url=reply.response_url)
    if kind == views.UPDATE:
        # The status shown travels with the form: a status left as shown is no move.
        meta = views.metadata(
            incident=incident_id, status=snap.status.value, reply_url=reply.response_url
        )
        # Offer only the moves the person may make (mitigate may be restricted).
        access = bot.services.access
        statuses = [
            s
            for s in UPDATE_STATUSES
            if s is snap.status or s not in MOVES or await access.may(MOVES[s], reply.user, snap)
        ]
        cadence = default_promise_minutes(bot.services.policy, snap.severity)
        chosen = list(await bot.public.components_of(incident_id))
        view = views.update_modal(snap, meta, statuses, cadence, bot.services.policy, chosen)
    elif kind == views.RESOLVE:
        view = views.resolve_modal(snap, meta, bot.services.policy)
    else:
        view = views.roles_modal(snap, bot.services.policy, meta)
    await bot.services.slack.open_view(trigger_id, view)

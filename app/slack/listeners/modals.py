"""Form submissions. Field checks that need no database answer inside the modal
(`response_action=errors`); everything else happens after the acknowledgment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.domain.roles import Role
from app.services.errors import InvalidInput
from app.services.incidents import (
    DeclareRequest,
    ResolveRequest,
    UpdateRequest,
    clean,
    validate_declare,
)
from app.slack import views
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    app = bot.app

    @app.view(views.DECLARE)
    @bot.inflight.track
    async def declare_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        meta = views.read_metadata(view)
        v = views.values(view)
        req = DeclareRequest(
            title=v.get("title") or "",
            severity=int(v.get("severity") or 0),
            declared_by=user,
            description=v.get("description") or "",
            service=v.get("service") or "",
            is_private="private" in (v.get("private") or []),
            commander=v.get("commander"),
            detected_at=v.get("detected_at"),
            request_key=f"view:{view.get('id')}",
            source_channel_id=meta.get("source_channel"),
            source_ts=meta.get("source_ts"),
            reply_url=meta.get("reply_url"),
        )
        try:
            validate_declare(req, bot.services.clock.now())
        except InvalidInput as exc:
            await ack(response_action="errors", errors={exc.field or "title": error_text(exc)})
            return
        await ack()
        reply = Replier(bot.services.slack, user, meta.get("reply_url"))
        await reply.run(lambda: _declare(bot, req))

    @app.view(views.UPDATE)
    @bot.inflight.track
    async def update_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        v = views.values(view)
        req = UpdateRequest(
            status=views.parse_status_value(v.get("status")),
            done_so_far=v.get("done_so_far") or "",
            investigation=v.get("investigation") or "",
            eta=v.get("eta") or "",
        )
        if not (req.done_so_far.strip() or req.investigation.strip() or req.eta.strip()):
            await ack(
                response_action="errors",
                errors={"investigation": "Say where the investigation stands, or what was done."},
            )
            return
        await ack()
        meta = views.read_metadata(view)
        reply = Replier(bot.services.slack, user, meta.get("reply_url"))
        key = f"view:{view.get('id')}"
        await reply.run(
            lambda: bot.flows.post_update(int(meta["incident"]), req, user, key, reply.say)
        )

    @app.view(views.RESOLVE)
    @bot.inflight.track
    async def resolve_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        v = views.values(view)
        req = ResolveRequest(
            root_cause=v.get("root_cause") or "",
            impact_summary=v.get("impact_summary") or "",
            users_affected=v.get("users_affected") or "",
            next_steps=v.get("next_steps") or "",
        )
        errors = _length_errors(req.__dict__)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        meta = views.read_metadata(view)
        reply = Replier(bot.services.slack, user, meta.get("reply_url"))

        await reply.run(lambda: bot.flows.resolve(int(meta["incident"]), req, user, reply.say))

    @app.view(views.ROLES)
    @bot.inflight.track
    async def roles_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        await ack()
        v = views.values(view)
        meta = views.read_metadata(view)
        reply = Replier(bot.services.slack, user, meta.get("reply_url"))

        async def assign() -> None:
            for role in Role:
                if holder := v.get(role.value):
                    await bot.flows.assign_role(
                        int(meta["incident"]), role, holder, user, reply.say
                    )

        await reply.run(assign)


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
    await bot.services.access.check(
        action, reply.user, snap.declared_by, snap.roles.values(), incident_id
    )
    meta = views.metadata(incident=incident_id, reply_url=reply.response_url)
    if kind == views.UPDATE:
        view = views.update_modal(snap, meta)
    elif kind == views.RESOLVE:
        view = views.resolve_modal(snap, meta)
    else:
        view = views.roles_modal(snap, bot.services.policy, meta)
    await bot.services.slack.open_view(trigger_id, view)

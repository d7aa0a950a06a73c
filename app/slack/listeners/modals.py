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
from app.slack.listeners import flows
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.bot import Warroom


def register(warroom: Warroom) -> None:
    app = warroom.app

    @app.view(views.DECLARE)
    @warroom.inflight.track
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
            validate_declare(req, warroom.services.clock.now())
        except InvalidInput as exc:
            await ack(response_action="errors", errors={exc.field or "title": error_text(exc)})
            return
        await ack()
        reply = Replier(warroom.services.slack, user, meta.get("reply_url"))
        await reply.run(lambda: _declare(warroom, req))

    @app.view(views.UPDATE)
    @warroom.inflight.track
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
        reply = Replier(warroom.services.slack, user, meta.get("reply_url"))
        key = f"view:{view.get('id')}"
        await reply.run(
            lambda: flows.post_update(warroom, int(meta["incident"]), req, user, key, reply)
        )

    @app.view(views.RESOLVE)
    @warroom.inflight.track
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
        reply = Replier(warroom.services.slack, user, meta.get("reply_url"))

        await reply.run(lambda: flows.resolve(warroom, int(meta["incident"]), req, user, reply))

    @app.view(views.ROLES)
    @warroom.inflight.track
    async def roles_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        await ack()
        v = views.values(view)
        meta = views.read_metadata(view)
        reply = Replier(warroom.services.slack, user, meta.get("reply_url"))

        async def assign() -> None:
            for role in Role:
                if holder := v.get(role.value):
                    await flows.assign_role(
                        warroom, int(meta["incident"]), role, holder, user, reply
                    )

        await reply.run(assign)


async def _declare(warroom: Warroom, req: DeclareRequest) -> None:
    if req.source_channel_id and req.source_ts:
        permalink = await warroom.services.slack.permalink(req.source_channel_id, req.source_ts)
        req = DeclareRequest(**{**req.__dict__, "source_permalink": permalink})
    await flows.declare(warroom, req)


def _length_errors(fields: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, value in fields.items():
        try:
            clean(value, 500 if name == "users_affected" else 3000, name)
        except InvalidInput as exc:
            errors[name] = str(exc)
    return errors

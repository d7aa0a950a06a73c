"""Modal views and reading their submitted values.

Context a modal needs later (incident number, where to answer) travels in `private_metadata`
as JSON, never in block IDs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from app.domain.escalation import PROMISE_CHOICES
from app.domain.fields import FieldPolicy, display, label
from app.domain.lifecycle import UPDATE_STATUSES, Status
from app.domain.policy import Policy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages.blocks import trim
from app.messages.mrkdwn import escape

MAX_METADATA = 3000
DECLARE = "declare_incident"
UPDATE = "post_update"
RESOLVE = "resolve_incident"
ROLES = "assign_roles"


def _text(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _text(label),
        "element": {**element, "action_id": block_id},
        "optional": optional,
    }
    if hint:
        block["hint"] = _text(hint)
    return block


def _text_input(
    initial: str = "", multiline: bool = False, max_length: int = 3000, placeholder: str = ""
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    if placeholder:
        element["placeholder"] = _text(placeholder[:150])
    return element


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": _text(trim(text, 75)), "value": value}


def metadata(**values: Any) -> str:
    """JSON for private_metadata, dropping the reply URL rather than exceed 3,000 chars."""
    data = {k: v for k, v in values.items() if v is not None}
    encoded = json.dumps(data, separators=(",", ":"))
    if len(encoded) > MAX_METADATA:
        data.pop("reply_url", None)
        encoded = json.dumps(data, separators=(",", ":"))
    return encoded


def read_metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[dict[str, Any]], meta: str
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _text(title[:24]),
        "submit": _text(submit[:24]),
        "close": _text("Cancel"),
        "private_metadata": meta,
        "blocks": blocks,
    }


DRILL_OPTION = "drill"
TYPE = "type"
FIELD_PREFIX = "field_"


def field_block(name: str) -> str:
    return FIELD_PREFIX + name


def _field_input(
    name: str, spec: FieldPolicy, value: Any, optional: bool, hint: str = ""
) -> dict[str, Any]:
    """A custom field in a form, filled in with its value. Links and numbers are typed as
    text and checked on submission, like every other value."""
    element: dict[str, Any]
    if spec.kind in ("select", "multi_select"):
        options = [_option(o, o) for o in spec.options]
        chosen = value if isinstance(value, list) else [value]
        picked = [o for o in options if o["value"] in chosen]
        if spec.kind == "select":
            element = {"type": "static_select", "options": options}
            if picked:
                element["initial_option"] = picked[0]
        else:
            element = {"type": "multi_static_select", "options": options}
            if picked:
                element["initial_options"] = picked
    elif spec.kind == "user":
        element = {"type": "users_select"}
        if value:
            element["initial_user"] = str(value)
    else:
        initial = display(spec, value) if value not in (None, "") else ""
        element = _text_input(initial, max_length=500 if spec.kind == "text" else 1000)
    hint = " ".join(part for part in (spec.description, hint) if part)
    return _input(field_block(name), label(name, spec), element, optional, hint or None)


def _declare_fields(policy: Policy) -> list[dict[str, Any]]:
    """Every field an incident may have. With types, a field some types lack is optional in
    the form; the chosen type's required ones are checked on submission."""
    blocks = []
    for name, spec in policy.fields.items():
        having = [t for t, s in policy.types.items() if name in s.fields]
        if policy.types and not having:
            continue
        everywhere = not policy.types or len(having) == len(policy.types)
        required = spec.required == "declare"
        hint = ""
        if not everywhere:
            kinds = ", ".join(label(t, policy.types[t]) for t in having)
            hint = f"{'Required' if required else 'Only'} for {kinds} incidents."
        blocks.append(_field_input(name, spec, None, not (required and everywhere), hint))
    return blocks


def _type_input(policy: Policy) -> dict[str, Any]:
    options = []
    for name, spec in policy.types.items():
        option = _option(label(name, spec), name)
        if spec.description:
            option["description"] = _text(trim(spec.description, 75))
        options.append(option)
    initial = next((o for o in options if o["value"] == policy.default_type), options[0])
    return _input(
        TYPE, "Type", {"type": "static_select", "options": options, "initial_option": initial}
    )


def declare_modal(
    policy: Policy, meta: str, description: str = "", drill: bool = False
) -> dict[str, Any]:
    severity_options = [
        _option(f"Sev{level} {sev.name} - {sev.impact}", str(level))
        for level, sev in sorted(policy.severities.items())
    ]
    severity: dict[str, Any] = {"type": "static_select", "options": severity_options}
    if not policy.types:
        severity["initial_option"] = severity_options[1]
    typed = [_type_input(policy)] if policy.types else []
    blocks = [
        _input(
            "title", "Title", _text_input(max_length=80, placeholder="Checkout API returning 500s")
        ),
        *typed,
        _input(
            "severity",
            "Severity",
            severity,
            # With types, an empty severity is the type's default.
            optional=bool(policy.types),
            hint="Leave empty for the type's default severity." if policy.types else None,
        ),
        _input(
            "description",
            "Description / impact",
            _text_input(description, multiline=True, placeholder="Who is affected and how"),
            optional=True,
        ),
        _input("service", "Affected service", _text_input(max_length=80), optional=True),
        _input(
            "commander",
            "Incident Commander",
            {"type": "users_select"},
            optional=True,
            hint="Leave empty to lead it yourself.",
        ),
        _input(
            "detected_at",
            "Detected at",
            {"type": "datetimepicker"},
            optional=True,
            hint="When the problem started being noticed, if before now.",
        ),
        _input(
            "private",
            "Visibility",
            {
                "type": "checkboxes",
                "options": [_option("Private incident (no announcement)", "private")],
            },
            optional=True,
        ),
        _input(DRILL_OPTION, "Drill", _drill_checkbox(drill), optional=True),
    ]
    blocks[len(typed) + 4 : len(typed) + 4] = _declare_fields(policy)
    blocks[len(typed) + 4 : len(typed) + 4] = _components_input(policy, [])
    return _modal(DECLARE, "Declare incident", "Declare", blocks, meta)


COMPONENTS = "components"


def _components_input(policy: Policy, chosen: Sequence[str]) -> list[dict[str, Any]]:
    """The status page components affected (none configured: no input). Their impact is the
    severity's default; `/incident components` sets another."""
    page = policy.statuspage
    if not page.enabled or not page.components:
        return []
    options = [_option(c.name, cid) for cid, c in list(page.components.items())[:100]]
    element: dict[str, Any] = {"type": "multi_static_select", "options": options}
    initial = [o for o in options if o["value"] in chosen]
    if initial:
        element["initial_options"] = initial
    return [
        _input(
            COMPONENTS,
            "Affected components (status page)",
            element,
            optional=True,
            hint="What customers see as affected; nothing is published without approval.",
        )
    ]


def _drill_checkbox(checked: bool) -> dict[str, Any]:
    option = _option("Drill: a practice incident", DRILL_OPTION)
    option["description"] = _text(
        "Pages only the people in the drill; not announced, not in the metrics."
    )
    element: dict[str, Any] = {"type": "checkboxes", "options": [option]}
    if checked:
        element["initial_options"] = [option]
    return element


def _incident_line(incident: IncidentSnapshot) -> dict[str, Any]:
    # mrkdwn with escaped text, like every message: user text is shown, never interpreted.
    text = f"*Incident #{incident.id}:* {escape(incident.title)}"
    return {"type": "section", "text": {"type": "mrkdwn", "text": trim(text, 3000)}}


NEXT_UPDATE = "next_update"


def _in_minutes(minutes: int) -> str:
    if minutes % 60 == 0:
        hours = minutes // 60
        return f"In {hours} hour{'' if hours == 1 else 's'}"
    return f"In {minutes} minutes"


def _next_update_input(cadence: int | None) -> dict[str, Any]:
    """When the next update will come: a few fixed choices and the severity's cadence (the
    default). Without a cadence there is no default, and leaving it empty promises nothing."""
    choices = sorted({*PROMISE_CHOICES, *([cadence] if cadence else [])})
    options = [_option(_in_minutes(m), str(m)) for m in choices]
    element: dict[str, Any] = {"type": "static_select", "options": options}
    if cadence:
        element["initial_option"] = next(o for o in options if o["value"] == str(cadence))
    return _input(
        NEXT_UPDATE,
        "Next update",
        element,
        optional=not cadence,
        hint='Shown as "next update by" in the announcement and the channel topic; '
        "Warroom reminds you shortly before, and tells the commander if it is missed.",
    )


def update_modal(
    incident: IncidentSnapshot,
    meta: str,
    statuses: Sequence[Status] = UPDATE_STATUSES,
    cadence: int | None = None,
    policy: Policy | None = None,
    components: Sequence[str] = (),
) -> dict[str, Any]:
    """The update form, offering `statuses` (the ones the person may move to, and the
    current one) and when the next update will come (`cadence`, the severity's, by
    default)."""
    options = [_option(s.label, s.value) for s in UPDATE_STATUSES if s in statuses]
    current = next((o for o in options if o["value"] == incident.status.value), options[0])
    blocks = [
        _incident_line(incident),
        _input(
            "status",
            "Status",
            {"type": "static_select", "options": options, "initial_option": current},
        ),
        _input("done_so_far", "What we've done so far", _text_input(multiline=True), True),
        _input("investigation", "Current investigation status", _text_input(multiline=True), True),
        _input("eta", "Estimated time to resolution", _text_input(max_length=200), True),
        _next_update_input(cadence),
    ]
    if policy is not None and not incident.is_private and not incident.is_drill:
        blocks += _components_input(policy, components)
    return _modal(UPDATE, "Post update", "Post", blocks, meta)


def parse_minutes(value: Any) -> int | None:
    """The minutes picked for the next update; None when none was picked or the value is
    not a whole number (refused by the form)."""
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        return None


def resolve_modal(
    incident: IncidentSnapshot, meta: str, policy: Policy | None = None
) -> dict[str, Any]:
    """The resolution form, with the incident's custom fields filled in (a field required
    at declare or resolve must have a value before resolving)."""
    fields = []
    for name in policy.fields_for(incident.type) if policy else []:
        spec = policy.fields[name] if policy else None
        if spec is None:
            continue
        needed = spec.required in ("declare", "resolve")
        fields.append(_field_input(name, spec, incident.fields.get(name), not needed))
    blocks = [
        _incident_line(incident),
        _input("root_cause", "Root cause", _text_input(multiline=True), True),
        _input("impact_summary", "Impact summary", _text_input(multiline=True), True),
        _input(
            "users_affected", "Users / transactions affected", _text_input(max_length=500), True
        ),
        _input("next_steps", "Next steps", _text_input(multiline=True), True),
        *fields,
    ]
    return _modal(RESOLVE, "Resolve incident", "Resolve", blocks, meta)


def field_values(policy: Policy, submitted: dict[str, Any]) -> dict[str, Any]:
    """The custom field values a form submitted, by field name (None: left empty)."""
    return {
        name: submitted.get(field_block(name))
        for name in policy.fields
        if field_block(name) in submitted
    }


def roles_modal(incident: IncidentSnapshot, policy: Policy, meta: str) -> dict[str, Any]:
    blocks = []
    for role in Role:
        element: dict[str, Any] = {"type": "users_select"}
        if holder := incident.roles.get(role):
            element["initial_user"] = holder
        blocks.append(_input(role.value, policy.role(role).name, element, optional=True))
    return _modal(ROLES, "Assign roles", "Save", blocks, meta)


# --- reading submissions ----------------------------------------------------------------


def values(view: dict[str, Any]) -> dict[str, Any]:
    """block_id -> the submitted value (text, selected option value, user, list, or datetime)."""
    out: dict[str, Any] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for action in actions.values():
            out[block_id] = _value(action)
    return out


def _value(action: dict[str, Any]) -> Any:
    kind = action.get("type")
    if kind == "plain_text_input":
        return action.get("value") or ""
    if kind == "static_select":
        return (action.get("selected_option") or {}).get("value")
    if kind == "users_select":
        return action.get("selected_user")
    if kind in ("checkboxes", "multi_static_select"):
        return [o.get("value") for o in action.get("selected_options") or []]
    if kind == "datetimepicker":
        stamp = action.get("selected_date_time")
        return datetime.fromtimestamp(int(stamp), UTC) if stamp else None
    return action.get("value")


modal = _modal
field = _input


def parse_status_value(value: Any) -> Status | None:
    """The status picked in the update form; None for anything the form does not offer."""
    try:
        status = Status(str(value))
    except ValueError:
        return None
    return status if status in UPDATE_STATUSES else None


ALERT_DISMISS = "alert_dismiss_form"
ALERT_ATTACH = "alert_attach_form"


def alert_declare_modal(
    policy: Policy, meta: str, title: str, severity: int, service: str, description: str
) -> dict[str, Any]:
    """The declare form, filled in from an alert group's route."""
    view = declare_modal(policy, meta, description)
    for block in view["blocks"]:
        element = block["element"]
        if block["block_id"] == "title" and title:
            element["initial_value"] = title[:80]
        elif block["block_id"] == "service" and service:
            element["initial_value"] = service[:80]
        elif block["block_id"] == "severity":
            chosen = [o for o in element["options"] if o["value"] == str(severity)]
            if chosen:
                element["initial_option"] = chosen[0]
    return view


def alert_dismiss_modal(meta: str) -> dict[str, Any]:
    blocks = [
        _input(
            "reason",
            "Why dismiss it?",
            _text_input(max_length=500, placeholder="Known flapping check; fixed in #1234"),
        )
    ]
    return _modal(ALERT_DISMISS, "Dismiss alert", "Dismiss", blocks, meta)


def alert_attach_modal(meta: str, incidents: list[IncidentSnapshot]) -> dict[str, Any]:
    options = [_option(f"#{i.id} Sev{i.severity} {i.title}", str(i.id)) for i in incidents[:100]]
    blocks = [
        _input("incident", "Open incident", {"type": "static_select", "options": options}),
    ]
    return _modal(ALERT_ATTACH, "Attach alert", "Attach", blocks, meta)


PUBLIC_EDIT = "public_update_edit"
PUBLIC_STATUSES = ("investigating", "identified", "monitoring", "resolved")


def public_edit_modal(title: str, status: str, body: str, meta: str) -> dict[str, Any]:
    """Edit a public update's draft, then publish it: what the public will read."""
    options = [_option(s.capitalize(), s) for s in PUBLIC_STATUSES]
    current = next((o for o in options if o["value"] == status), options[0])
    blocks = [
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Customers read this on the status page. Name no people, hosts "
                    "or internal systems.",
                }
            ],
        },
        _input("title", "Title", _text_input(title, max_length=200)),
        _input(
            "status",
            "Status",
            {"type": "static_select", "options": options, "initial_option": current},
        ),
        _input("body", "Update", _text_input(body, multiline=True, max_length=3000)),
    ]
    return _modal(PUBLIC_EDIT, "Public update", "Publish", blocks, meta)

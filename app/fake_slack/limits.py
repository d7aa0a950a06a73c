"""Block Kit limit validation, answering the way Slack's API does.

Slack rejects a whole message or view when any block breaks a limit, and it says why in
strings such as `[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
The fake reproduces those checks so that a bot which would fail on Slack fails in tests too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

Surface = Literal["message", "modal", "home"]

MAX_BLOCKS: dict[str, int] = {"message": 50, "modal": 100, "home": 100}
VIEW_MAX_BYTES = 250_000
MAX_ID = 255

_SELECTS = frozenset(
    {
        "static_select",
        "multi_static_select",
        "external_select",
        "multi_external_select",
        "users_select",
        "multi_users_select",
        "conversations_select",
        "multi_conversations_select",
        "channels_select",
        "multi_channels_select",
    }
)
_CHOICES = frozenset({"checkboxes", "radio_buttons"})
_PICKERS = frozenset({"datepicker", "timepicker", "datetimepicker"})
_CLICKABLE = frozenset({"button", "overflow", "workflow_button"})
_TEXT_INPUTS = frozenset(
    {
        "plain_text_input",
        "email_text_input",
        "url_text_input",
        "number_input",
        "rich_text_input",
        "file_input",
    }
)
_ALLOWED_ELEMENTS: dict[str, frozenset[str]] = {
    "accessory": _SELECTS | _CHOICES | _PICKERS | _CLICKABLE | {"image"},
    "actions": _SELECTS | _CHOICES | _PICKERS | _CLICKABLE,
    "input": _SELECTS | _CHOICES | _PICKERS | _TEXT_INPUTS,
}


class _Report:
    """Collects problems for one payload; every check appends instead of stopping."""

    def __init__(self, surface: Surface) -> None:
        self.surface = surface
        self.problems: list[str] = []
        self.block_ids: set[str] = set()

    def error(self, message: str, pointer: str) -> None:
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def max_chars(self, value: Any, limit: int, pointer: str) -> None:
        if not isinstance(value, str):
            self.error("must be a string", pointer)
        elif len(value) > limit:
            self.error(f"must be less than {limit + 1} characters", pointer)

    def optional_chars(self, parent: dict[str, Any], key: str, limit: int, pointer: str) -> None:
        if key in parent:
            self.max_chars(parent[key], limit, f"{pointer}/{key}")

    def items(
        self, parent: dict[str, Any], key: str, pointer: str, bounds: tuple[int, int]
    ) -> list[Any]:
        """Check an array member's presence and size; return it (or [] when unusable)."""
        value = parent.get(key)
        here = f"{pointer}/{key}"
        if value is None:
            self.error(f"missing required field: {key}", pointer)
            return []
        if not isinstance(value, list):
            self.error("must be an array", here)
            return []
        low, high = bounds
        if len(value) < low:
            self.error(f"must provide at least {low} items", here)
        if len(value) > high:
            self.error(f"no more than {high} items allowed", here)
        return value


# text objects ----------------------------------------------------------------------


def _text_object(r: _Report, obj: Any, pointer: str, limit: int, plain_only: bool) -> None:
    """Check a `{"type": "plain_text"|"mrkdwn", "text": ...}` object."""
    if not isinstance(obj, dict):
        r.error("must be an object", pointer)
        return
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        r.error("must be " + " or ".join(f"`{kind}`" for kind in allowed), f"{pointer}/type")
    text = obj.get("text")
    if text == "":
        r.error("must be more than 0 characters", f"{pointer}/text")
    else:
        r.max_chars(text, limit, f"{pointer}/text")


def _text_field(
    r: _Report,
    parent: dict[str, Any],
    key: str,
    pointer: str,
    limit: int,
    *,
    plain_only: bool = False,
    required: bool = True,
) -> None:
    """Check a text object stored under `key`, reporting a missing one when required."""
    if key not in parent:
        if required:
            r.error(f"missing required field: {key}", pointer)
        return
    _text_object(r, parent[key], f"{pointer}/{key}", limit, plain_only)


# composition objects ---------------------------------------------------------------


def _option(r: _Report, option: Any, pointer: str, allow_mrkdwn: bool = False) -> None:
    """Options: text 75, value 150, description 75, url 3000."""
    if not isinstance(option, dict):
        r.error("must be an object", pointer)
        return
    _text_field(r, option, "text", pointer, 75, plain_only=not allow_mrkdwn)
    if "value" not in option and "url" not in option:
        r.error("missing required field: value", pointer)
    r.optional_chars(option, "value", 150, pointer)
    r.optional_chars(option, "url", 3000, pointer)
    _text_field(r, option, "description", pointer, 75, required=False)


def _options(
    r: _Report, parent: dict[str, Any], pointer: str, bounds: tuple[int, int], mrkdwn: bool
) -> None:
    for index, option in enumerate(r.items(parent, "options", pointer, bounds)):
        _option(r, option, f"{pointer}/options/{index}", mrkdwn)


def _option_groups(r: _Report, element: dict[str, Any], pointer: str) -> None:
    for index, group in enumerate(r.items(element, "option_groups", pointer, (1, 100))):
        here = f"{pointer}/option_groups/{index}"
        if not isinstance(group, dict):
            r.error("must be an object", here)
            continue
        _text_field(r, group, "label", here, 75, plain_only=True)
        _options(r, group, here, (1, 100), mrkdwn=False)


def _confirm(r: _Report, element: dict[str, Any], pointer: str) -> None:
    """Confirmation dialogs: title 100, text 300, confirm and deny 30."""
    confirm = element.get("confirm")
    if confirm is None:
        return
    here = f"{pointer}/confirm"
    if not isinstance(confirm, dict):
        r.error("must be an object", here)
        return
    _text_field(r, confirm, "title", here, 100, plain_only=True)
    _text_field(r, confirm, "text", here, 300)
    _text_field(r, confirm, "confirm", here, 30, plain_only=True)
    _text_field(r, confirm, "deny", here, 30, plain_only=True)


# elements --------------------------------------------------------------------------


def _button(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _text_field(r, element, "text", pointer, 75, plain_only=True)
    r.optional_chars(element, "value", 2000, pointer)
    r.optional_chars(element, "url", 3000, pointer)
    if element.get("style", "primary") not in ("primary", "danger"):
        r.error("must be `primary` or `danger`", f"{pointer}/style")
    _confirm(r, element, pointer)


def _select(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _text_field(r, element, "placeholder", pointer, 150, plain_only=True, required=False)
    if element.get("type") in ("static_select", "multi_static_select"):
        if "option_groups" in element:
            _option_groups(r, element, pointer)
        else:
            _options(r, element, pointer, (1, 100), mrkdwn=False)
    if "initial_option" in element:
        _option(r, element["initial_option"], f"{pointer}/initial_option")
    _confirm(r, element, pointer)


def _overflow(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _options(r, element, pointer, (1, 5), mrkdwn=False)
    _confirm(r, element, pointer)


def _choices(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _options(r, element, pointer, (1, 10), mrkdwn=True)
    _confirm(r, element, pointer)


def _placeholder_only(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _text_field(r, element, "placeholder", pointer, 150, plain_only=True, required=False)


def _plain_text_input(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _placeholder_only(r, element, pointer)
    for key in ("min_length", "max_length"):
        value = element.get(key)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            r.error("must be an integer", f"{pointer}/{key}")
        elif not 0 <= value <= 3000:
            r.error("must be between 0 and 3000", f"{pointer}/{key}")


def _file_input(r: _Report, element: dict[str, Any], pointer: str) -> None:
    max_files = element.get("max_files", 10)
    if not isinstance(max_files, int) or not 1 <= max_files <= 10:
        r.error("must be between 1 and 10", f"{pointer}/max_files")


def _image_source(r: _Report, image: dict[str, Any], pointer: str) -> None:
    """Images need a URL (3000) or a slack_file, and alt text (2000)."""
    if "image_url" in image:
        r.max_chars(image["image_url"], 3000, f"{pointer}/image_url")
    elif "slack_file" not in image:
        r.error("missing required field: image_url", pointer)
    if "alt_text" not in image:
        r.error("missing required field: alt_text", pointer)
    else:
        r.max_chars(image["alt_text"], 2000, f"{pointer}/alt_text")


def _workflow_button(r: _Report, element: dict[str, Any], pointer: str) -> None:
    _text_field(r, element, "text", pointer, 75, plain_only=True)


_ELEMENT_CHECKS: dict[str, Callable[[_Report, dict[str, Any], str], None]] = {
    "button": _button,
    "workflow_button": _workflow_button,
    "overflow": _overflow,
    "checkboxes": _choices,
    "radio_buttons": _choices,
    "datepicker": _placeholder_only,
    "timepicker": _placeholder_only,
    "datetimepicker": _placeholder_only,
    "plain_text_input": _plain_text_input,
    "email_text_input": _placeholder_only,
    "url_text_input": _placeholder_only,
    "number_input": _placeholder_only,
    "rich_text_input": _placeholder_only,
    "file_input": _file_input,
    "image": _image_source,
    **{kind: _select for kind in _SELECTS},
}


def _element(r: _Report, element: Any, pointer: str, container: str) -> None:
    """Check an interactive element (or image) inside a section, actions or input block."""
    if not isinstance(element, dict):
        r.error("must be an object", pointer)
        return
    kind = element.get("type")
    check = _ELEMENT_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        r.error(f"unsupported type `{kind}`", f"{pointer}/type")
        return
    if kind not in _ALLOWED_ELEMENTS[container]:
        r.error(f"`{kind}` is not allowed in this block", f"{pointer}/type")
    r.optional_chars(element, "action_id", MAX_ID, pointer)
    check(r, element, pointer)


# blocks ----------------------------------------------------------------------------


def _section(r: _Report, block: dict[str, Any], pointer: str) -> None:
    """Sections: text 3000, at most 10 fields of 2000 each, one optional accessory."""
    if "text" not in block and "fields" not in block:
        r.error("must provide either `text` or `fields`", pointer)
    _text_field(r, block, "text", pointer, 3000, required=False)
    if "fields" in block:
        for index, item in enumerate(r.items(block, "fields", pointer, (1, 10))):
            _text_object(r, item, f"{pointer}/fields/{index}", 2000, plain_only=False)
    if "accessory" in block:
        _element(r, block["accessory"], f"{pointer}/accessory", "accessory")


def _header(r: _Report, block: dict[str, Any], pointer: str) -> None:
    _text_field(r, block, "text", pointer, 150, plain_only=True)


def _divider(r: _Report, block: dict[str, Any], pointer: str) -> None:
    """Dividers carry nothing to check; listed so their type is known."""


def _context(r: _Report, block: dict[str, Any], pointer: str) -> None:
    """Context: 1 to 10 elements, each an image or a text object."""
    for index, element in enumerate(r.items(block, "elements", pointer, (1, 10))):
        here = f"{pointer}/elements/{index}"
        if isinstance(element, dict) and element.get("type") == "image":
            _image_source(r, element, here)
        else:
            _text_object(r, element, here, 3000, plain_only=False)


def _actions(r: _Report, block: dict[str, Any], pointer: str) -> None:
    for index, element in enumerate(r.items(block, "elements", pointer, (1, 25))):
        _element(r, element, f"{pointer}/elements/{index}", "actions")


def _input(r: _Report, block: dict[str, Any], pointer: str) -> None:
    """Input blocks: only in views; label and hint 2000; exactly one element."""
    if r.surface == "message":
        r.error("input blocks are only allowed in modals and Home tabs", f"{pointer}/type")
    _text_field(r, block, "label", pointer, 2000, plain_only=True)
    _text_field(r, block, "hint", pointer, 2000, plain_only=True, required=False)
    if "element" not in block:
        r.error("missing required field: element", pointer)
    else:
        _element(r, block["element"], f"{pointer}/element", "input")


def _image_block(r: _Report, block: dict[str, Any], pointer: str) -> None:
    _image_source(r, block, pointer)
    _text_field(r, block, "title", pointer, 2000, plain_only=True, required=False)


def _rich_text(r: _Report, block: dict[str, Any], pointer: str) -> None:
    r.items(block, "elements", pointer, (0, 10_000))


def _file_block(r: _Report, block: dict[str, Any], pointer: str) -> None:
    for key in ("external_id", "source"):
        if key not in block:
            r.error(f"missing required field: {key}", pointer)


def _video(r: _Report, block: dict[str, Any], pointer: str) -> None:
    for key in ("alt_text", "video_url", "thumbnail_url"):
        if key not in block:
            r.error(f"missing required field: {key}", pointer)
    _text_field(r, block, "title", pointer, 200, plain_only=True)


def _markdown(r: _Report, block: dict[str, Any], pointer: str) -> None:
    if "text" not in block:
        r.error("missing required field: text", pointer)
    else:
        r.max_chars(block["text"], 12_000, f"{pointer}/text")


_BLOCK_CHECKS: dict[str, Callable[[_Report, dict[str, Any], str], None]] = {
    "section": _section,
    "header": _header,
    "divider": _divider,
    "context": _context,
    "actions": _actions,
    "input": _input,
    "image": _image_block,
    "rich_text": _rich_text,
    "file": _file_block,
    "video": _video,
    "markdown": _markdown,
}


def _block(r: _Report, block: Any, pointer: str) -> None:
    """Check one block: known type, block_id (255, unique) and the type's own limits."""
    if not isinstance(block, dict):
        r.error("must be an object", pointer)
        return
    kind = block.get("type")
    check = _BLOCK_CHECKS.get(kind) if isinstance(kind, str) else None
    if check is None:
        r.error(f"unsupported type `{kind}`", f"{pointer}/type")
        return
    block_id = block.get("block_id")
    if block_id is not None:
        r.max_chars(block_id, MAX_ID, f"{pointer}/block_id")
        if block_id in r.block_ids:
            r.error("must be unique within the blocks", f"{pointer}/block_id")
        r.block_ids.add(str(block_id))
    check(r, block, pointer)


def _blocks(r: _Report, blocks: Any, pointer: str) -> None:
    if not isinstance(blocks, list):
        r.error("must be an array", pointer)
        return
    limit = MAX_BLOCKS[r.surface]
    if len(blocks) > limit:
        r.error(f"no more than {limit} items allowed", pointer)
    for index, block in enumerate(blocks):
        _block(r, block, f"{pointer}/{index}")


def validate_blocks(
    blocks: Any, surface: Surface = "message", pointer: str = "/blocks"
) -> list[str]:
    """Return every Block Kit problem of `blocks` on `surface` (empty when valid)."""
    report = _Report(surface)
    _blocks(report, blocks, pointer)
    return report.problems


# views -----------------------------------------------------------------------------


def view_size(view: Any) -> int:
    """Bytes of the view as JSON, the measure behind `view_too_large`."""
    return len(json.dumps(view, separators=(",", ":"), ensure_ascii=False).encode())


def _view_fields(r: _Report, view: dict[str, Any]) -> None:
    """Modal chrome: title/submit/close 24, private_metadata 3000, ids 255."""
    if view.get("type") == "modal":
        _text_field(r, view, "title", "/view", 24, plain_only=True)
    else:
        _text_field(r, view, "title", "/view", 24, plain_only=True, required=False)
    _text_field(r, view, "submit", "/view", 24, plain_only=True, required=False)
    _text_field(r, view, "close", "/view", 24, plain_only=True, required=False)
    r.optional_chars(view, "private_metadata", 3000, "/view")
    r.optional_chars(view, "callback_id", MAX_ID, "/view")
    r.optional_chars(view, "external_id", MAX_ID, "/view")


def _needs_submit(view: dict[str, Any]) -> bool:
    """Slack refuses a modal with input blocks but no submit button."""
    blocks = view.get("blocks")
    if view.get("type") != "modal" or "submit" in view or not isinstance(blocks, list):
        return False
    return any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)


def validate_view(view: Any, allowed_types: tuple[str, ...] = ("modal", "home")) -> list[str]:
    """Return every problem of a view payload (empty when valid); size is checked apart."""
    if not isinstance(view, dict):
        return ["[ERROR] must be an object [json-pointer:/view]"]
    kind = view.get("type")
    if kind not in allowed_types:
        expected = " or ".join(f"`{t}`" for t in allowed_types)
        return [f"[ERROR] must be {expected} [json-pointer:/view/type]"]
    report = _Report("modal" if kind == "modal" else "home")
    _view_fields(report, view)
    if "blocks" not in view:
        report.error("missing required field: blocks", "/view")
    else:
        _blocks(report, view["blocks"], "/view/blocks")
    if _needs_submit(view):
        report.error("must provide `submit` when the view has input blocks", "/view")
    return report.problems

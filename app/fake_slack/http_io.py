"""Reading requests and writing responses the way Slack's HTTP layer does."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class BadRequestBody(ValueError):
    """The body could not be decoded (malformed JSON, JSON that is not an object)."""


async def read_args(request: web.Request) -> dict[str, Any]:
    """Merge query-string, form and JSON arguments: slack_sdk uses all three encodings."""
    values: dict[str, Any] = {key: request.query[key] for key in request.query}
    if not request.body_exists:
        return values
    if request.content_type == "application/json":
        values.update(await _json_object(request))
    elif request.content_type in FORM_TYPES:
        form = await request.post()
        values.update({key: value for key, value in form.items() if isinstance(value, str)})
    return values


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except json.JSONDecodeError as exc:
        raise BadRequestBody("invalid_json") from exc
    if not isinstance(body, dict):
        raise BadRequestBody("invalid_json")
    return body


def bearer_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer …`; a malformed header yields ""."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A Slack-style JSON answer (compact, utf-8)."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), default=str).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


async def read_upload(request: web.Request) -> bytes:
    """Upload bodies are raw bytes from slack_sdk; a multipart form's first file also works."""
    if request.content_type != "multipart/form-data":
        return await request.read()
    form = await request.post()
    for value in form.values():
        if isinstance(value, web.FileField):
            return value.file.read()
    return b""

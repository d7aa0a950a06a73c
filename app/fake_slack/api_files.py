"""files.* methods of the fake Web API (the external upload flow that files_upload_v2 uses).

The flow is three steps: get an upload URL, POST the bytes there, then complete the
upload, which shares the file into a conversation as a message. The byte upload itself
is served by the HTTP server (see server.py), which stores the content on the file.
"""

from __future__ import annotations

from .api_common import Handler, require_can_post, resolve_target, thread_parent
from .args import ApiError, Args
from .state import PERMALINK_HOST, Channel, JsonDict, Message, StoredFile, Workspace


def get_upload_url(ws: Workspace, args: Args) -> JsonDict:
    """files.getUploadURLExternal: reserves a file id and an upload URL on this server."""
    filename = args.text("filename")
    length = args.integer("length", -1)
    if not filename or length < 0:
        raise ApiError("invalid_arguments")
    stored = StoredFile(
        id=ws.new_id("F"),
        name=filename,
        length=length,
        user=ws.bot_user_id,
        created=int(ws.now()),
    )
    ws.files[stored.id] = stored
    return {"upload_url": f"{ws.base_url}/upload/{stored.id}", "file_id": stored.id}


def _completed_files(ws: Workspace, args: Args) -> list[tuple[StoredFile, str]]:
    """The uploaded files named in `files`, each with its requested title."""
    entries = args.structured("files", "invalid_arguments")
    if not isinstance(entries, list) or not entries:
        raise ApiError("invalid_arguments")
    chosen = []
    for entry in entries:
        stored = ws.files.get(entry.get("id", "")) if isinstance(entry, dict) else None
        if stored is None or stored.content is None:
            raise ApiError("file_not_found")
        chosen.append((stored, str(entry.get("title") or stored.name)))
    return chosen


def _share_targets(ws: Workspace, args: Args) -> list[Channel]:
    """Conversations to share into (`channel_id` or `channels`), checked like a post."""
    channel_id = args.text("channel_id")
    refs = args.ids("channels") or ([channel_id] if channel_id else [])
    targets = [resolve_target(ws, ref) for ref in refs]
    for channel in targets:
        require_can_post(ws, channel)
    return targets


def complete_upload(ws: Workspace, args: Args) -> JsonDict:
    """files.completeUploadExternal: titles the files and shares them as one message."""
    files = _completed_files(ws, args)
    targets = _share_targets(ws, args)
    parents = [thread_parent(ws, channel, args.text("thread_ts")) for channel in targets]
    for stored, title in files:
        stored.title = title
    for channel, parent in zip(targets, parents, strict=True):
        _share(ws, channel, parent, [stored for stored, _ in files], args.text("initial_comment"))
    return {"files": [stored.to_api(PERMALINK_HOST, ws.base_url) for stored, _ in files]}


def _share(
    ws: Workspace,
    channel: Channel,
    parent: Message | None,
    files: list[StoredFile],
    comment: str | None,
) -> None:
    """Post the share message that carries the files."""
    for stored in files:
        if channel.id not in stored.channels:
            stored.channels.append(channel.id)
    message = Message(
        ts=ws.next_ts(),
        channel=channel.id,
        user=ws.bot_user_id,
        text=comment or "",
        thread_ts=parent.ts if parent else None,
        files=[stored.id for stored in files],
        bot_id=ws.bot_id,
    )
    ws.add_message(message)


HANDLERS: dict[str, Handler] = {
    "files.getUploadURLExternal": get_upload_url,
    "files.completeUploadExternal": complete_upload,
}

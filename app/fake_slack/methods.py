"""The table of Web API methods the fake implements; anything else is `unknown_method`."""

from __future__ import annotations

from . import (
    api_bookmarks,
    api_chat,
    api_conversations,
    api_files,
    api_items,
    api_views,
    api_workspace,
)
from .api_common import Handler

HANDLERS: dict[str, Handler] = {
    **api_workspace.HANDLERS,
    **api_conversations.HANDLERS,
    **api_chat.HANDLERS,
    **api_items.HANDLERS,
    **api_views.HANDLERS,
    **api_files.HANDLERS,
    **api_bookmarks.HANDLERS,
}

"""A signed JSON POST for any other paging system. The schema and the signature recipe are in
docs/paging.md; `sign` is the recipe.

The receiver answers 2xx when it took the call. 401/403 = it refuses our secret; 408, 429 and
5xx = retried with backoff; any other status = it will never take this call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from app.domain.paging import WebhookTarget
from app.integrations.pagers.http import Http, by_status
from app.services.ports import PageCall

SCHEMA_VERSION = "1"
TIMESTAMP_HEADER = "X-Warroom-Timestamp"
SIGNATURE_HEADER = "X-Warroom-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`v1=` and the hex HMAC-SHA256, keyed with the secret, of `<timestamp>.<body>`. The
    timestamp inside the signed text lets a receiver refuse a replayed old call."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def payload(call: PageCall, target_name: str, at: float) -> dict[str, Any]:
    return {
        "version": SCHEMA_VERSION,
        "event": call.action,
        "dedup_key": call.dedup_key,
        "target": target_name,
        "sent_at": int(at),
        "incident": {
            "id": call.incident_id,
            "severity": call.severity,
            "summary": call.summary,
        },
        "message": call.message,
        "links": [{"href": href, "text": text} for href, text in call.links],
        "details": dict(call.details),
    }


class Webhook:
    def __init__(self, target: WebhookTarget, secret: str, http: Http) -> None:
        self.target = target
        self.secret = secret
        self.http = http

    async def send(self, call: PageCall) -> str:
        now = time.time()
        body = json.dumps(payload(call, call.target, now), separators=(",", ":")).encode()
        stamp = str(int(now))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Warroom-Pager/1",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(self.secret, stamp, body),
        }
        answer = await self.http.post(self.target.url, body, headers)
        if 200 <= answer.status < 300:
            return f"accepted by the webhook (HTTP {answer.status})"
        raise by_status(answer, "The webhook")

"""Secrets the tests' bot runs with, and the people and groups in the fake workspace."""

from __future__ import annotations

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"

# People in the fake workspace.
ALICE, BOB, CAROL, DAVE, ERIN = "UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"
ONCALL, ONCALL_BACKUP, ENG_LEAD, CEO, VP_OPS = "UONCALL", "UBACKUP", "UENGLEAD", "UCEO", "UVPOPS"
ENG_MGR, VP_ENG, SPECIALIST = "UENGMGR", "UVPENG", "USPECIAL"
ONCALL_GROUP = "SONCALL"

"""Persistence: SQLModel tables, async sessions and alembic migrations."""

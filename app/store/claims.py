"""Taking rows to work on, when several replicas share one database.

A claim is one `UPDATE … RETURNING` that moves due rows to a working state under a lease. On
Postgres the candidate rows are picked with `FOR UPDATE SKIP LOCKED`, so replicas claiming at
the same moment take different rows; repeating the "due" condition in the update itself makes
the claim conditional on SQLite, where writes are serialised anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select, update
from sqlmodel import SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.db import Database

Row = TypeVar("Row", bound=SQLModel)


async def claim(
    db: Database,
    model: type[Row],
    due: ColumnElement[bool],
    values: dict[str, Any],
    order_by: Any,
    limit: int,
    filters: Sequence[ColumnElement[bool]] = (),
    session: AsyncSession | None = None,
) -> list[Row]:
    """Set `values` on up to `limit` rows matching `due` (and `filters`); return those rows.

    In `session` when given (the caller commits, and may read what goes with the rows in the
    same transaction), else in a transaction of its own."""
    key = col(model.id)  # type: ignore[attr-defined]
    candidates = select(key).where(due, *filters).order_by(order_by).limit(limit)
    if db.engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    statement = (
        update(model)
        .where(key.in_(candidates.scalar_subquery()), due)
        .values(**values)
        .returning(model)
        .execution_options(synchronize_session=False)
    )
    if session is not None:
        result = await session.exec(statement)
        return list(result.scalars().all())
    async with db.session() as own:
        result = await own.exec(statement)
        return list(result.scalars().all())

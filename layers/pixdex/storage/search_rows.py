"""Search rows that are not a vector ranking: ranking by auto-tag score, and the columns
a search hit shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import sql

from pixdex.storage.connection import Conn
from pixdex.storage.search_sql import HIT_COLUMNS, Filters, matching_where


def tag_ranked(
    conn: Conn, filters: Filters, offset: int, limit: int
) -> list[tuple[UUID, float]]:
    """Rank by auto-tag score: per queried kind the best matching tag, averaged over kinds."""
    where, params = matching_where(filters)
    parts: list[sql.Composable] = []
    for kind, names in (
        ("objects", filters.objects),
        ("scenes", filters.scenes),
        ("attributes", filters.attributes),
    ):
        if names:
            parts.append(
                sql.SQL(
                    "coalesce((SELECT max((i.auto_tags -> {kind} ->> t)::float8)"
                    " FROM unnest({names}::text[]) AS t), 0)"
                ).format(kind=sql.Literal(kind), names=sql.Placeholder(f"rank_{kind}"))
            )
            params[f"rank_{kind}"] = list(names)
    score = (
        sql.SQL("({}) / {}").format(sql.SQL(" + ").join(parts), sql.Literal(float(len(parts))))
        if parts
        else sql.SQL("1.0")
    )
    order = sql.SQL("score DESC, i.id") if parts else sql.SQL("i.created_at DESC, i.id")
    statement = sql.SQL(
        "SELECT i.id, {score} AS score FROM images i WHERE {w}"
        " ORDER BY {order} OFFSET {offset} LIMIT {limit}"
    ).format(
        score=score,
        w=where,
        order=order,
        offset=sql.Literal(offset),
        limit=sql.Literal(limit),
    )
    return [
        (UUID(str(r["id"])), float(str(r["score"])))
        for r in conn.execute(statement, params)
    ]


def hit_rows(conn: Conn, ids: Sequence[UUID]) -> dict[UUID, dict[str, Any]]:
    rows = conn.execute(
        sql.SQL("SELECT id, {} FROM images WHERE id = ANY(%s)").format(
            sql.SQL(", ").join(map(sql.Identifier, HIT_COLUMNS))
        ),
        (list(ids),),
    ).fetchall()
    return {UUID(str(r["id"])): dict(r) for r in rows}

"""Reading the twin's state for assertions: rows per object key, straight from the database
(the functions wrote them; the tests only count)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.twin.stack import IMAGES_BUCKET, Twin


@dataclass(frozen=True)
class Row:
    id: str
    key: str
    status: str
    error: str | None
    sha256: str | None
    embeddings: int
    updated_at: Any


def rows(twin: Twin, dataset: str) -> list[Row]:
    with psycopg.connect(twin.database.url, row_factory=dict_row) as conn:
        found = conn.execute(
            """
            SELECT i.id::text, i.storage_key, i.status, i.error, i.sha256, i.updated_at,
                   (SELECT count(*) FROM image_embeddings e WHERE e.image_id = i.id) AS embeddings
            FROM images i JOIN datasets d ON d.id = i.dataset_id
            WHERE d.name = %s
            """,
            (dataset,),
        ).fetchall()
    prefix = f"s3://{IMAGES_BUCKET}/"
    return [
        Row(
            id=r["id"],
            key=r["storage_key"].removeprefix(prefix),
            status=r["status"],
            error=r["error"],
            sha256=r["sha256"],
            embeddings=int(r["embeddings"]),
            updated_at=r["updated_at"],
        )
        for r in found
    ]


def rows_per_key(twin: Twin, dataset: str) -> Counter[str]:
    return Counter(row.key for row in rows(twin, dataset))


def dead_letters(twin: Twin) -> list[str]:
    sqs = twin.client("sqs")
    bodies: list[str] = []
    while True:
        answer = sqs.receive_message(
            QueueUrl=twin.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
            VisibilityTimeout=30,
        )
        messages = answer.get("Messages", [])
        if not messages:
            return bodies
        bodies += [m["Body"] for m in messages]

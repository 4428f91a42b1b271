"""Facet counts: how many of a search's matching images carry each tag, class, folder...

Counted over the rows that pass the search's filters (its dataset scope included), not
only the page shown, and over at most ``cap`` of them: on a dataset of millions a facet
panel must answer in interactive time, so past the cap the counts are those of the first
``cap`` matching rows and say so (``complete`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pixdex.storage.connection import Conn
from pixdex.storage.search_sql import Filters, matching_where

__all__ = ["FACET_SCAN_ROWS", "FacetRows", "facet_counts"]

FACET_SCAN_ROWS = 50_000

_QUERY = """
WITH m AS (
    SELECT i.tag_keys, i.user_tags, i.annotation_classes, i.folder, i.split, i.batch_id,
           i.annotation_job_id
    FROM images i WHERE {where} LIMIT {cap}
)
SELECT 'tag_keys' AS facet, k AS value, count(*) AS n FROM m, unnest(m.tag_keys) k GROUP BY k
UNION ALL
SELECT 'tags', t, count(*) FROM m, unnest(m.user_tags) t GROUP BY t
UNION ALL
SELECT 'annotations', a, count(*) FROM m, jsonb_object_keys(m.annotation_classes) a GROUP BY a
UNION ALL
SELECT 'folders', m.folder, count(*) FROM m GROUP BY m.folder
UNION ALL
SELECT 'split', m.split, count(*) FROM m WHERE m.split IS NOT NULL GROUP BY m.split
UNION ALL
SELECT 'batch_id', m.batch_id, count(*) FROM m WHERE m.batch_id IS NOT NULL GROUP BY m.batch_id
UNION ALL
SELECT 'annotation_job_id', m.annotation_job_id, count(*) FROM m
    WHERE m.annotation_job_id IS NOT NULL GROUP BY m.annotation_job_id
UNION ALL
SELECT 'scanned', '', count(*) FROM m
"""


@dataclass(frozen=True)
class FacetRows:
    # facet -> value -> images; "tag_keys" values are "<kind>:<name>" (objects:tabby cat)
    counts: dict[str, dict[str, int]]
    scanned: int
    complete: bool


def facet_counts(conn: Conn, filters: Filters, cap: int = FACET_SCAN_ROWS) -> FacetRows:
    where, params = matching_where(filters)
    query = sql.SQL(_QUERY).format(where=where, cap=sql.Literal(cap))
    counts: dict[str, dict[str, int]] = {}
    scanned = 0
    for row in conn.execute(query, params).fetchall():
        if row["facet"] == "scanned":
            scanned = int(str(row["n"]))
            continue
        counts.setdefault(str(row["facet"]), {})[str(row["value"])] = int(str(row["n"]))
    return FacetRows(counts, scanned, scanned < cap)

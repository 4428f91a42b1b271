"""Data half of ``bench_search.py``: the synthetic clustered corpus and its bulk load
(COPY, then the HNSW build)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import psycopg
from numpy.typing import NDArray
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row

from pixdex.config import Settings
from pixdex.inference.base import ModelSpec
from pixdex.storage import catalog
from pixdex.storage.connection import database_url

SPEC = ModelSpec(name="bench-1280", dim=1280, encodes_text=False, tags=False, input_size=224)
WORKSPACE = "default"
LATENT_DIM = 64
LATENT_NORM = 0.5
NOISE_NORM = 0.25
CHUNK = 50_000
K = 10
RARE = "rare"
# Row i gets the id be7c0000-0000-4000-8000-<i as 12 hex digits>: cheap to rebuild anywhere.
ID_HI = 0xBE7C0000_00004000
ID_LO = 0x80000000_00000000
RESULTS = Path(__file__).resolve().parent / "results"

DConn = psycopg.Connection[dict[str, Any]]


def row_id(index: int) -> UUID:
    return UUID(int=(ID_HI << 64) | ID_LO | index)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Corpus:
    """Deterministic clustered unit vectors, generated chunk by chunk."""

    def __init__(self, seed: int, clusters: int, dim: int) -> None:
        self.seed = seed
        self.dim = dim
        rng = np.random.default_rng([seed, 0])
        centres = rng.standard_normal((clusters, dim), dtype=np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.basis = rng.standard_normal((LATENT_DIM, dim), dtype=np.float32) / np.sqrt(dim)

    def _points(self, rng: np.random.Generator, n: int) -> NDArray[np.float32]:
        return self.near(rng, rng.integers(0, len(self.centres), n))

    def near(self, rng: np.random.Generator, labels: NDArray[np.int64]) -> NDArray[np.float32]:
        """One point around each of the clusters ``labels`` names."""
        n = len(labels)
        latent = rng.standard_normal((n, LATENT_DIM), dtype=np.float32)
        latent *= np.float32(LATENT_NORM / np.sqrt(LATENT_DIM))
        noise = rng.standard_normal((n, self.dim), dtype=np.float32)
        noise *= np.float32(NOISE_NORM / np.sqrt(self.dim))
        points = self.centres[labels] + latent @ self.basis + noise
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        result: NDArray[np.float32] = points.astype(np.float32, copy=False)
        return result

    def chunk(self, index: int, rows: int) -> NDArray[np.float32]:
        """Rows ``[index * CHUNK, min((index + 1) * CHUNK, rows))``."""
        n = min(CHUNK, rows - index * CHUNK)
        return self._points(np.random.default_rng([self.seed, 1, index]), n)

    def queries(self, n: int) -> NDArray[np.float32]:
        return self._points(np.random.default_rng([self.seed, 2]), n)


# ------------------------------------------------------------------------------- loading


def open_direct(settings: Settings, *, prepare: bool = True) -> DConn:
    conn: DConn = psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row)
    if not prepare:
        conn.prepare_threshold = None
    register_vector(conn)
    return conn


def embedding_tuples(model: bytes, dataset_id: UUID, vectors: NDArray[np.float32], *,
                     id_hi: int, first_row: int,
                     order: NDArray[np.intp] | None = None) -> bytes:
    """Binary COPY tuples of ``image_embeddings`` (image_id, model, dataset_id, embedding)
    for ``vectors`` (``model``: the name encoded): image ids ``first_row``, ``first_row + 1``,
    ... in the ``id_hi`` space
    (each bench its own), embeddings as halfvec; written in ``order`` when given."""
    n, dim = vectors.shape
    tuples = np.zeros(n, dtype=np.dtype([
        ("nfields", ">i2"), ("len_id", ">i4"), ("id_hi", ">u8"), ("id_lo", ">u8"),
        ("len_model", ">i4"), ("model", f"S{len(model)}"), ("len_ds", ">i4"), ("ds", "V16"),
        ("len_vec", ">i4"), ("vec_dim", ">u2"), ("vec_unused", ">u2"), ("vec", ">f2", (dim,)),
    ]))
    tuples["nfields"] = 4
    tuples["len_id"] = 16
    tuples["id_hi"] = id_hi
    tuples["id_lo"] = ID_LO | np.arange(first_row, first_row + n, dtype=np.uint64)
    tuples["len_model"] = len(model)
    tuples["model"] = model
    tuples["len_ds"] = 16
    tuples["ds"] = np.frombuffer(dataset_id.bytes, dtype="V16")[0]
    tuples["len_vec"] = 4 + 2 * dim
    tuples["vec_dim"] = dim
    tuples["vec"] = vectors
    return (tuples if order is None else tuples[order]).tobytes()


def load_rows(conn: DConn, corpus: Corpus, dataset_id: UUID, rows: int) -> float:
    """COPY ``rows`` images + embeddings; return seconds."""
    start = time.perf_counter()
    conn.execute(
        "INSERT INTO images (id, dataset_id, name, storage_key, status, split)"
        " SELECT ('be7c0000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, %(ds)s,"
        " 'img-' || g || '.jpg', 'bench://' || g, 'indexed',"
        " CASE WHEN g %% 100 = 7 THEN 'rare' END"
        " FROM generate_series(0, %(n)s - 1) AS g",
        {"ds": dataset_id, "n": rows},
    )
    log(f"images rows inserted in {time.perf_counter() - start:.1f}s")
    model = SPEC.name.encode()
    header = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
    conn.execute("SET session_replication_role = replica")  # FK triggers off for the load
    with conn.cursor().copy(
        "COPY image_embeddings (image_id, model, dataset_id, embedding) FROM STDIN"
        " (FORMAT BINARY)"
    ) as copy:
        copy.write(header)
        for index in range((rows + CHUNK - 1) // CHUNK):
            vectors = corpus.chunk(index, rows)
            n = len(vectors)
            copy.write(embedding_tuples(model, dataset_id, vectors, id_hi=ID_HI,
                                        first_row=index * CHUNK))
            if index % 4 == 3:
                log(f"  embeddings copied: {index * CHUNK + n:,}")
        copy.write((-1).to_bytes(2, "big", signed=True))
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("ANALYZE images")
    conn.execute("ANALYZE image_embeddings")
    return time.perf_counter() - start


def build_index(
    settings: Settings, dataset_id: UUID, max_minutes: float, maintenance_work_mem: str
) -> dict[str, Any]:
    """Build the HNSW index with register_model's statement, polling progress."""
    index = catalog.hnsw_index_name(SPEC.name)
    conn = open_direct(settings)
    conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    conn.execute(f"DROP INDEX IF EXISTS {index}")
    pid = conn.info.backend_pid
    progress: list[dict[str, Any]] = []
    done = threading.Event()
    cancelled = threading.Event()
    start = time.perf_counter()

    def poll() -> None:
        watcher = open_direct(settings)
        try:
            while not done.wait(20):
                row = watcher.execute(
                    "SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total"
                    " FROM pg_stat_progress_create_index WHERE pid = %s",
                    (pid,),
                ).fetchone()
                elapsed = time.perf_counter() - start
                if row is not None:
                    entry = {"elapsed_s": round(elapsed, 1), **row}
                    progress.append(entry)
                    log(f"  index build: {entry}")
                if elapsed > max_minutes * 60 and not cancelled.is_set():
                    log(f"  index build over {max_minutes} min: cancelling")
                    cancelled.set()
                    conn.cancel_safe()
        finally:
            watcher.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    notices: list[str] = []
    conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))
    error = None
    try:
        catalog.register_model(conn, SPEC, dataset_id)
    except psycopg.errors.QueryCanceled as exc:
        error = str(exc)
    seconds = time.perf_counter() - start
    done.set()
    poller.join()
    conn.close()
    result: dict[str, Any] = {
        "seconds": round(seconds, 1),
        "finished": error is None,
        "maintenance_work_mem": maintenance_work_mem,
        "max_parallel_maintenance_workers": 2,
        "progress": progress,
        "notices": notices,
    }
    if error is not None:
        result["error"] = error
        last = next((p for p in reversed(progress) if p.get("blocks_total")), None)
        if last:
            fraction = last["blocks_done"] / last["blocks_total"]
            result["fraction_done"] = round(fraction, 4)
            if fraction > 0:
                result["projected_seconds"] = round(last["elapsed_s"] / fraction)
    return result

"""The first searches after the embedded server restarts, with and without autoprewarm.

One command (on the database ``bench_scale.py`` built and kept; build it first):

    nice -n 19 .venv/bin/python bench/bench_restart.py --rows 1000000 --dim 768

A restart after a reboot: the server is stopped, the OS page cache dropped
(``/proc/sys/vm/drop_caches``, root only; the result says whether it was), and the
next process starts the server and searches at once. Per mode (``PIXDEX_DB_AUTOPREWARM``
false / true), three processes, each one server lifetime: the first applies the mode
(it takes effect at the next start), the second serves the warm-up (the largest
dataset's graph prewarmed, 200 searches unfiltered and 200 with the 1% filter; with
autoprewarm its block list is written at shutdown), the third is measured: server
start, then the library's searches in the largest dataset (unfiltered, then a 1%
filter), each timed, with the time since the server was ready and whether the
autoprewarm worker was still loading.
Results: ``bench/results/restart-<rows>-<dim>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import scale_data as sd
from bench_scale import log, prewarm, spec_for
from numpy.typing import NDArray
from psycopg.rows import dict_row

from pixdex.app.search import search
from pixdex.config import Settings
from pixdex.models import SearchQuery
from pixdex.storage.connection import close_pools, database_url

RESULTS = Path(__file__).resolve().parent / "results"
K = 10


def settings_for(args: argparse.Namespace, autoprewarm: bool) -> Settings:
    # Linger 0: the server stops (and autoprewarm writes its block list) as this exits.
    return Settings(home=args.home, db_autoprewarm=autoprewarm, db_linger_seconds=0)


def searcher(args: argparse.Namespace, settings: Settings
             ) -> Callable[[NDArray[np.float32], str | None], float]:
    """One library search in the largest dataset; its latency in ms."""
    model = spec_for(args.dim).name

    def one(q: NDArray[np.float32], split: str | None) -> float:
        start = time.perf_counter()
        search(SearchQuery(dataset="big", model=model, like_vector=q.tolist(), limit=K,
                           split=split), settings)
        return (time.perf_counter() - start) * 1000
    return one


def warm(args: argparse.Namespace, autoprewarm: bool) -> dict[str, Any]:
    settings = settings_for(args, autoprewarm)
    one = searcher(args, settings)
    big = sd.layout(args.rows)[0]
    with psycopg.connect(database_url(settings), autocommit=True, row_factory=dict_row) as conn:
        loaded = prewarm(conn)
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    for q in sd.Corpus(args.seed, args.dim).queries(big, 200, warm_up=True):
        one(q, None)
        one(q, "p1")
    return {"prewarm": loaded,
            "shared_preload_libraries": preload and preload["shared_preload_libraries"]}


def loading_watch(url: str, ready: float, done: dict[str, float]) -> threading.Thread:
    """Notes when the autoprewarm worker (one per database, gone once loaded) ends."""
    def watch() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            seen = False
            while time.monotonic() - ready < 600:
                row = conn.execute("SELECT count(*) FROM pg_stat_activity"
                                   " WHERE backend_type = 'autoprewarm worker'").fetchone()
                busy = bool(row and row[0])
                seen = seen or busy
                if seen and not busy:
                    done["loaded_after_s"] = round(time.monotonic() - ready, 2)
                    return
                if not seen and time.monotonic() - ready > 5:
                    return  # never started: nothing to load
                time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def measured(args: argparse.Namespace, autoprewarm: bool) -> dict[str, Any]:
    settings = settings_for(args, autoprewarm)
    big = sd.layout(args.rows)[0]
    queries = sd.Corpus(args.seed, args.dim).queries(big, args.queries)
    started = time.monotonic()
    url = database_url(settings)  # starts the server
    ready = time.monotonic()
    done: dict[str, float] = {}
    watcher = loading_watch(url, ready, done)
    one = searcher(args, settings)
    timeline: list[dict[str, Any]] = []
    for case, split in (("no filter", None), ("1% filter", "p1")):
        for q in queries:
            at = round(time.monotonic() - ready, 3)
            timeline.append({"case": case, "at_s": at, "ms": round(one(q, split), 2)})
    watcher.join(timeout=10)  # it ends once the load is done, or 5 s without one
    close_pools()
    return {"server_start_s": round(ready - started, 2), **done, "timeline": timeline}


def summary(timeline: list[dict[str, Any]], loaded_after: float | None) -> dict[str, Any]:
    """Per case: the first search, the first 20, all of them, and (with autoprewarm)
    those started while its worker was still loading and those after."""
    def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
        if not rows:
            return {"searches": 0}
        ms = np.array([t["ms"] for t in rows])
        return {"searches": len(rows), "p50_ms": round(float(np.percentile(ms, 50)), 2),
                "p95_ms": round(float(np.percentile(ms, 95)), 2)}

    out: dict[str, Any] = {"loaded_after_s": loaded_after}
    for case in ("no filter", "1% filter"):
        rows = [t for t in timeline if t["case"] == case]
        out[case] = {"first_ms": rows[0]["ms"], "first_20": stats(rows[:20]),
                     "all": stats(rows), "from_s": rows[0]["at_s"], "to_s": rows[-1]["at_s"]}
        if loaded_after is not None:
            out[case]["while_loading"] = stats([t for t in rows if t["at_s"] < loaded_after])
            out[case]["after_loading"] = stats([t for t in rows if t["at_s"] >= loaded_after])
    return out


def drop_os_cache() -> bool:
    subprocess.run(["sync"], check=False)
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


def child(args: argparse.Namespace, phase: str, autoprewarm: bool) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--autoprewarm", str(autoprewarm).lower(),
         "--rows", str(args.rows), "--dim", str(args.dim), "--queries", str(args.queries),
         "--seed", str(args.seed), "--home", str(args.home)],
        capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the {phase} process failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = sd.arguments(__doc__, queries=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--phase", choices=("warm", "measure"), default=None)
    parser.add_argument("--autoprewarm", choices=("true", "false"), default="true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.home = (args.home or Path(f"/tmp/pixdex-bench-scale-{args.rows}-{args.dim}")).resolve()
    if not (args.home / "build.json").exists():
        sys.exit(f"no database in {args.home}: run bench/bench_scale.py --rows {args.rows}"
                 f" --dim {args.dim} --build-only first")
    if args.phase is not None:
        on = args.autoprewarm == "true"
        print(json.dumps(warm(args, on) if args.phase == "warm" else measured(args, on)))
        return
    runs: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for on in (False, True) if round_ % 2 == 0 else (True, False):
            log(f"round {round_ + 1}: autoprewarm {'on' if on else 'off'}")
            setup = [child(args, "warm", on), child(args, "warm", on)]
            dropped = drop_os_cache()
            result = child(args, "measure", on)
            runs.append({"autoprewarm": on, "os_cache_dropped": dropped, "setup": setup,
                         "server_start_s": result["server_start_s"],
                         **summary(result["timeline"], result.get("loaded_after_s")),
                         "timeline": result["timeline"]})
            log(json.dumps({k: v for k, v in runs[-1].items()
                            if k not in ("timeline", "setup")}))
    out = args.out or RESULTS / f"restart-{args.rows}-{args.dim}.json"
    out.write_text(json.dumps({"rows": args.rows, "dim": args.dim, "queries": args.queries,
                               "runs": runs}, indent=1) + "\n")
    log(f"written: {out}")


if __name__ == "__main__":
    main()

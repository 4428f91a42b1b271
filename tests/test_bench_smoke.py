"""The search benchmarks still run end to end, on a few thousand rows: each is one command
(docs/benchmarks.md), and one that breaks is found here rather than weeks later by whoever
needs its figures. Nothing here is timed; the checks are that they finish, write their
results, and that the exact paths agree with their numpy ground truth."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.server_home import own_home

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench(script: str, *args: str) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]


def test_bench_search_runs_and_its_exact_paths_are_exact() -> None:
    with own_home("pixdex-bench-search-") as home:
        out = home / "search.json"
        _bench("bench_search.py", "--rows", "3000", "--queries", "8", "--exact-sample", "2",
               "--component-sample", "2", "--ef", "40", "--home", str(home / "db"),
               "--out", str(out))
        result = json.loads(out.read_text())
    cases: list[dict[str, Any]] = result["measure"]["cases"]
    paths = {(c["case"], c["path"]) for c in cases}
    assert ("1% filter", "raw SQL exact") in paths
    assert any(path.startswith("library search()") for _, path in paths)
    library = [c for c in cases if c["path"].startswith("library search() [exact")]
    assert library and all(c["recall@10"] == 1.0 for c in library)
    assert result["sizes"]["hnsw_index_bytes"] > 0


def test_bench_scale_runs_over_many_datasets_with_exact_recall() -> None:
    with own_home("pixdex-bench-scale-") as home:
        out = home / "scale.json"
        _bench("bench_scale.py", "--rows", "20000", "--dim", "32", "--queries", "8",
               "--shared-buffers", "128MB", "--maintenance-work-mem", "64MB",
               "--home", str(home / "db"), "--out", str(out))
        result = json.loads(out.read_text())
    assert result["datasets"] > 10  # the Zipf-sized layout, not one dataset
    cases = {c["case"]: c for c in result["measure"]["cases"]}
    assert set(cases) == {"largest dataset, no filter", "largest dataset, 1% filter",
                          "largest dataset, 0.1% filter", "1k-row dataset"}
    for case in cases.values():
        by_path = {r["path"]: r for r in case["results"]}
        assert by_path["library search()"]["queries"] == 8
        if "raw SQL exact" in by_path:  # ranks every filtered row: the numpy truth exactly
            assert by_path["raw SQL exact"]["recall@10"] == 1.0

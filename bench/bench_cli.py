"""Wall-clock latency of ``pixdex`` commands, run as a user runs them (one process each).

Creates a throw-away ``PIXDEX_HOME`` under ``/tmp/pixdex-bench-cli-*``, indexes a few of
scikit-image's sample photos once (which also builds the ONNX file into the model cache),
then runs each command ``--runs`` times as a subprocess and reports min / median / max.

Two server states are measured, because the embedded PostgreSQL is stopped when its last
user exits:

* ``up``: this script holds a connection for the whole measurement, so every command
  attaches to a running server (the issue's "database already up" target);
* ``cold``: nothing else holds it and ``PIXDEX_DB_LINGER_SECONDS=0``, so each command
  starts and stops PostgreSQL itself;
* ``lingering``: nothing else holds it, with the default linger (300 s): the first command
  starts it and its keeper, the next ones attach (what a user typing commands gets).

    .venv/bin/python bench/bench_cli.py [--runs 7] [--label after] [--out bench/results/cli.json]
    git archive HEAD layers | tar -x -C /tmp/before   # the committed library, to compare
    .venv/bin/python bench/bench_cli.py --label after --baseline /tmp/before/layers

Results: a markdown table on stdout and the JSON file (merged by ``--label``, so "before"
and "after" runs of the same script sit side by side).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
from PIL import Image

from pixdex.config import Settings
from pixdex.storage.connection import close_pools, connect
from pixdex.storage.embedded import stop_server

PIXDEX = str(Path(sys.executable).parent / "pixdex")
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
DATASET = "bench"


def commands(root: Path, chelsea_id: str) -> dict[str, list[str]]:
    return {
        "--help": ["--help"],
        "db status": ["db", "status"],
        "datasets": ["datasets"],
        "search --id": ["search", "--dataset", DATASET, "--id", chelsea_id, "--limit", "5"],
        "search --objects": ["search", "--dataset", DATASET, "--objects", "tabby cat"],
        "search --like": ["search", "--dataset", DATASET, "--like",
                          str(root / "chelsea.jpg"), "--limit", "5"],
        "search --prompt": ["search", "--dataset", DATASET, "--prompt", "a cat"],
    }


def run_once(env: dict[str, str], args: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run([PIXDEX, *args], env=env, capture_output=True, text=True,
                            check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"pixdex {' '.join(args)} failed:\n{result.stderr}")
    return elapsed


def summary(times: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
            "max_s": round(max(times), 3), "runs": [round(t, 3) for t in times]}


def measure(envs: dict[str, dict[str, str]], cmds: dict[str, list[str]],
            runs: int) -> dict[str, Any]:
    """Per variant and command; variants alternate run by run, so that a shared machine's
    load changes hit them alike."""
    rows: dict[str, Any] = {variant: {} for variant in envs}
    for name, args in cmds.items():
        times: dict[str, list[float]] = {variant: [] for variant in envs}
        for env in envs.values():
            run_once(env, args)  # warm the page cache; not counted
        for _ in range(runs):
            for variant, env in envs.items():
                times[variant].append(run_once(env, args))
        for variant in envs:
            rows[variant][name] = summary(times[variant])
        medians = ", ".join(f"{v} {rows[v][name]['median_s']:.2f} s" for v in envs)
        print(f"  {name:<18} median {medians}", file=sys.stderr)
    return rows


def prepare(home: Path) -> tuple[dict[str, str], Path, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIXDEX_")}
    env["PIXDEX_HOME"] = str(home)
    env["PIXDEX_DB_LINGER_SECONDS"] = "0"  # each state below sets what it measures
    root = home / "photos"
    root.mkdir()
    for name in PHOTOS:
        image = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
        image.save(root / f"{name}.jpg")
    result = subprocess.run([PIXDEX, "index", str(root), "--dataset", DATASET, "--json"],
                            env=env, capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    chelsea_id = next(e["id"] for e in report["images"] if e["path"].endswith("chelsea.jpg"))
    return env, root, chelsea_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--label", default="current", help="key in the JSON (before/after)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/cli.json"))
    parser.add_argument("--skip-cold", action="store_true")
    parser.add_argument(
        "--baseline", type=Path, metavar="LAYERS_DIR",
        help="also time another version of the library (e.g. `git archive HEAD layers` "
        "unpacked), put first on PYTHONPATH, alternating with this one",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="pixdex-bench-cli-"))
    settings = Settings(home=home)
    try:
        env, root, chelsea_id = prepare(home)
        envs = {args.label: env}
        if args.baseline is not None:
            envs["baseline"] = {**env, "PYTHONPATH": str(args.baseline.resolve())}
        cmds = commands(root, chelsea_id)
        results: dict[str, Any] = {}
        print("server up (held by this script):", file=sys.stderr)
        with connect(settings) as conn:
            conn.execute("SELECT 1")
            for variant, rows in measure(envs, cmds, args.runs).items():
                results[f"{variant} up"] = rows
        close_pools()
        if not args.skip_cold:
            stop_server(settings.pgdata_dir)
            print("server cold (each command starts and stops it):", file=sys.stderr)
            for variant, rows in measure(envs, cmds, args.runs).items():
                results[f"{variant} cold"] = rows
            stop_server(settings.pgdata_dir)
            print("server lingering (the default: kept up 300 s after a command):",
                  file=sys.stderr)
            lingering = {v: {**e, "PIXDEX_DB_LINGER_SECONDS": "300"} for v, e in envs.items()}
            for variant, rows in measure(lingering, cmds, args.runs).items():
                results[f"{variant} lingering"] = rows
    finally:
        close_pools()
        stop_server(settings.pgdata_dir)
        shutil.rmtree(home, ignore_errors=True)

    print(f"| command | {' | '.join(f'{s} median s' for s in results)} |")
    print(f"|---|{'---:|' * len(results)}")
    for name in cmds:
        cells = " | ".join(f"{results[s][name]['median_s']:.2f}" for s in results)
        print(f"| `pixdex {name}` | {cells} |")

    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    previous[args.label] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "load_average": os.getloadavg(), "runs": args.runs, "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(previous, indent=2) + "\n")


if __name__ == "__main__":
    main()

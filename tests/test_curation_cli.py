"""The curation commands of the real ``pixdex`` executable: duplicates, leakage (its exit
code gates a pipeline), outliers, label-doubts, curation recompute / gate, and
``index --on-duplicate``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.curation_photos import AUGMENTATIONS
from tests.test_cli import run

LIGHT = AUGMENTATIONS["light"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory,
            photos: dict[str, Image.Image]) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("curation-cli")
    for split in ("train", "test", "extra"):
        (root / split).mkdir()
    for name in ("chelsea", "coffee", "rocket", "coins"):
        photos[name].save(root / "train" / f"{name}.png")
    LIGHT["resize"](photos["chelsea"]).save(root / "test" / "chelsea_small.png")
    photos["astronaut"].save(root / "test" / "astronaut.png")
    LIGHT["flip"](photos["coffee"]).save(root / "extra" / "coffee_flip.png")
    LIGHT["jpeg"](photos["rocket"]).save(root / "extra" / "rocket_q70.jpg")
    return {split: root / split for split in ("train", "test", "extra")}


@pytest.fixture(scope="module")
def dataset(cli_env: dict[str, str], folders: dict[str, Path]) -> str:
    name = f"cur-cli-{os.getpid()}"
    for split in ("train", "test"):
        run(cli_env, "index", str(folders[split]), "--dataset", name, "--split", split)
    return name


def test_duplicates_json_shape(cli_env: dict[str, str], dataset: str) -> None:
    page = json.loads(run(cli_env, "duplicates", "--dataset", dataset, "--json").stdout)
    assert set(page) >= {"level", "total_clusters", "clusters"} and page["level"] == 1
    assert page["total_clusters"] == 1
    cluster = page["clusters"][0]
    assert set(cluster) >= {"id", "size", "members", "keep"} and cluster["size"] == 2
    assert {m["name"] for m in cluster["members"]} == {"chelsea.png", "chelsea_small.png"}
    assert all(set(m) >= {"id", "name", "split", "score"} for m in cluster["members"])
    keeper = next(m for m in cluster["members"] if m["id"] == cluster["keep"])
    assert keeper["name"] == "chelsea.png"
    text = run(cli_env, "duplicates", "--dataset", dataset, "--level", "0").stdout
    assert "cluster(s) at level 0" in text


def test_leakage_exit_code(cli_env: dict[str, str], dataset: str) -> None:
    found = run(cli_env, "leakage", "--dataset", dataset, "--json", ok=False)
    assert found.returncode == 1, found.stderr
    body = json.loads(found.stdout)
    assert body["counts"] == {"train/test": 1}
    pair = body["pairs"][0]
    assert {pair["a"]["split"], pair["b"]["split"]} == {"train", "test"}
    assert set(pair["a"]) >= {"id", "name", "split"} and pair["score"] > 0.85
    human = run(cli_env, "leakage", "--dataset", dataset, ok=False)
    assert human.returncode == 1 and "train/test 1" in human.stdout


def test_leakage_without_splits(cli_env: dict[str, str], folders: dict[str, Path]) -> None:
    name = f"cur-cli-nosplit-{os.getpid()}"
    run(cli_env, "index", str(folders["train"]), "--dataset", name)
    clean = run(cli_env, "leakage", "--dataset", name, "--json")
    assert clean.returncode == 0
    body = json.loads(clean.stdout)
    assert body["pairs"] == [] and "no splits" in body["note"]


def test_bad_input(cli_env: dict[str, str], dataset: str) -> None:
    for command in ("duplicates", "leakage"):
        bad = run(cli_env, command, "--dataset", dataset, "--level", "5", ok=False)
        assert bad.returncode == 2 and "0-4" in bad.stderr
    for command in ("duplicates", "leakage", "outliers", "label-doubts"):
        missing = run(cli_env, command, "--dataset", "no-such-dataset", ok=False)
        assert missing.returncode == 2 and "no-such-dataset" in missing.stderr
    gate = run(cli_env, "curation", "gate", "--dataset", dataset, "--on-duplicate", "skip",
               "--level", "9", ok=False)
    assert gate.returncode == 2 and "0-4" in gate.stderr
    typo = run(cli_env, "index", "/nonexistent", "--dataset", dataset, "--on-duplicate",
               "drop", ok=False)
    assert typo.returncode == 2 and "invalid choice" in typo.stderr


def test_outliers_label_doubts_recompute(cli_env: dict[str, str], dataset: str) -> None:
    ranked = json.loads(run(cli_env, "outliers", "--dataset", dataset, "--json").stdout)
    assert ranked["total"] == 6
    scores = [o["score"] for o in ranked["outliers"]]
    assert scores == sorted(scores, reverse=True)
    doubts = json.loads(run(cli_env, "label-doubts", "--dataset", dataset, "--json").stdout)
    assert doubts == {"neighbour_doubts": [], "tag_contradictions": []}  # nothing annotated
    done = json.loads(run(cli_env, "curation", "recompute", "--dataset", dataset,
                          "--json").stdout)
    assert done["images"] == 6
    after = json.loads(run(cli_env, "outliers", "--dataset", dataset, "--json").stdout)
    assert [o["id"] for o in after["outliers"]] == [o["id"] for o in ranked["outliers"]]


def test_index_gate(cli_env: dict[str, str], folders: dict[str, Path], dataset: str) -> None:
    name = f"cur-cli-gate-{os.getpid()}"
    run(cli_env, "index", str(folders["train"]), "--dataset", name)
    report = json.loads(run(cli_env, "index", str(folders["extra"]), "--dataset", name,
                            "--on-duplicate", "skip", "--json").stdout)
    assert (report["indexed"], report["skipped"]) == (0, 2)
    assert all(e["duplicate_of"] and "near-duplicate" in e["error"] for e in report["images"])
    shown = run(cli_env, "curation", "gate", "--dataset", name, "--on-duplicate", "link",
                "--json")
    assert json.loads(shown.stdout) == {"on_duplicate": "link", "level": 1}
    linked = json.loads(run(cli_env, "index", str(folders["extra"]), "--dataset", name,
                            "--json").stdout)
    assert linked["indexed"] == 2 and all(e["duplicate_of"] for e in linked["images"])
    page = json.loads(run(cli_env, "duplicates", "--dataset", name, "--json").stdout)
    assert page["total_clusters"] == 2

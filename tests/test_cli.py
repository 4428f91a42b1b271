"""The real ``pixdex`` executable, run as a user would, against the test database."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from pixdex.config import Settings
from pixdex.storage.connection import connect

PIXDEX = shutil.which("pixdex", path=str(Path(sys.executable).parent)) or "pixdex"


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PIXDEX, *args], env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def indexed(cli_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
            photos: dict[str, Image.Image]) -> tuple[str, Path, dict[str, object]]:
    root = tmp_path_factory.mktemp("cli")
    (root / "pets").mkdir()
    photos["chelsea"].save(root / "pets" / "chelsea.jpg")
    ImageOps.mirror(photos["chelsea"]).save(root / "pets" / "chelsea_flip.jpg")
    photos["coffee"].save(root / "coffee.png")
    photos["rocket"].save(root / "rocket.webp")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    result = run(cli_env, "index", str(root), "--dataset", "cli", "--tag", "cli-test",
                 "--split", "train", "--json")
    return "cli", root, json.loads(result.stdout)


def test_index_json_report(indexed: tuple[str, Path, dict[str, object]]) -> None:
    _, _, report = indexed
    assert (report["indexed"], report["skipped"], report["failed"]) == (4, 0, 1)
    entries = {Path(str(e["path"])).name: e for e in report["images"]}  # type: ignore[attr-defined]
    assert set(entries["broken.jpg"]) >= {"path", "id", "status", "error"}
    assert entries["broken.jpg"]["status"] == "failed" and entries["broken.jpg"]["error"]
    assert entries["coffee.png"]["status"] == "indexed" and entries["coffee.png"]["error"] is None


def test_reindex_skips_everything(cli_env: dict[str, str],
                                  indexed: tuple[str, Path, dict[str, object]]) -> None:
    dataset, root, _ = indexed
    again = json.loads(run(cli_env, "index", str(root), "--dataset", dataset, "--json").stdout)
    assert (again["indexed"], again["skipped"]) == (0, 4)


def test_search_like_file_and_by_id(cli_env: dict[str, str],
                                    indexed: tuple[str, Path, dict[str, object]]) -> None:
    dataset, root, report = indexed
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--like",
                          str(root / "pets" / "chelsea_flip.jpg"), "--limit", "2", "--json").stdout)
    assert {"total", "offset", "results"} <= set(page)
    assert [r["name"] for r in page["results"]][1] == "chelsea.jpg"
    assert set(page["results"][0]) >= {"id", "name", "score"}
    chelsea_id = next(e["id"] for e in report["images"]  # type: ignore[attr-defined]
                      if e["path"].endswith("pets/chelsea.jpg"))
    by_id = json.loads(run(cli_env, "search", "--dataset", dataset, "--id", chelsea_id,
                           "--limit", "1", "--json").stdout)
    assert by_id["results"][0]["name"] == "chelsea_flip.jpg"
    boxed = run(cli_env, "search", "--dataset", dataset, "--like", str(root / "coffee.png"),
                "--box", "0.25,0.25,0.5,0.5")
    assert "match(es)" in boxed.stdout
    related = json.loads(run(cli_env, "search", "--dataset", dataset, "--like",
                             str(root / "pets" / "chelsea_flip.jpg"), "--min-similarity",
                             "0.6", "--json").stdout)
    assert {r["name"] for r in related["results"]} == {"chelsea.jpg", "chelsea_flip.jpg"}
    assert all(r["similarity"] >= 0.6 for r in related["results"])


def test_search_by_tags_and_filters(cli_env: dict[str, str],
                                    indexed: tuple[str, Path, dict[str, object]]) -> None:
    dataset, _, _ = indexed
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--objects",
                          "tabby cat,tiger cat,Egyptian Mau", "--folder", "/pets", "--json").stdout)
    assert {r["name"] for r in page["results"]} == {"chelsea.jpg", "chelsea_flip.jpg"}
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--tag", "cli-test",
                          "--split", "train", "--limit", "2", "--offset", "2", "--json").stdout)
    assert page["total"] == 4 and page["offset"] == 2 and len(page["results"]) == 2


def test_limit_is_the_api_limit(cli_env: dict[str, str],
                                indexed: tuple[str, Path, dict[str, object]]) -> None:
    from pixdex.app.service.search_schemas import MAX_API_LIMIT

    dataset, _, _ = indexed
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--tag", "cli-test",
                          "--limit", str(MAX_API_LIMIT), "--json").stdout)
    assert page["total"] == 4
    assert f"1..{MAX_API_LIMIT}" in run(cli_env, "search", "--help").stdout


def test_tag_search_that_finds_nothing_suggests_names(
    cli_env: dict[str, str], indexed: tuple[str, Path, dict[str, object]]
) -> None:
    dataset, _, _ = indexed
    text = run(cli_env, "search", "--dataset", dataset, "--objects", "Mau").stdout
    assert "0 match(es)" in text
    assert "known objects tags containing 'Mau': 'Egyptian Mau'" in text
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--objects", "MAU",
                          "--attributes", "Dar", "--json").stdout)
    assert page["total"] == 0
    assert any("'Egyptian Mau'" in w for w in page["warnings"])
    assert any("attributes" in w and "'dark'" in w for w in page["warnings"])
    synonym = run(cli_env, "search", "--dataset", dataset, "--objects", "TABBY").stdout
    assert "0 match(es)" not in synonym and "chelsea" in synonym
    found = run(cli_env, "search", "--dataset", dataset, "--objects", "tabby cat").stdout
    assert "note:" not in found and "known" not in found


def test_text_output_shows_what_matched_and_the_file(
    cli_env: dict[str, str], indexed: tuple[str, Path, dict[str, object]]
) -> None:
    dataset, root, _ = indexed
    text = run(cli_env, "search", "--dataset", dataset, "--objects", "tabby cat",
               "--folder", "/pets").stdout
    lines = [line for line in text.splitlines() if line.lstrip()[:2] in ("1.", "2.")]
    assert len(lines) == 2
    for line in lines:
        assert "objects: tabby cat 0." in line
        assert "Egyptian Mau" not in line and "tiger cat" not in line  # not asked for
    assert {line.split()[-1] for line in lines} == {
        str(root / "pets" / "chelsea.jpg"), str(root / "pets" / "chelsea_flip.jpg")}
    similar = run(cli_env, "search", "--dataset", dataset, "--like", str(root / "coffee.png"),
                  "--limit", "1").stdout
    assert "espresso 0." in similar and similar.rstrip().endswith(
        str(root / "coffee.png"))


def test_attribute_search_shows_the_attribute(cli_env: dict[str, str], tmp_path: Path,
                                              photos: dict[str, Image.Image]) -> None:
    photos["camera"].save(tmp_path / "camera.png")  # a grayscale photo
    run(cli_env, "index", str(tmp_path), "--dataset", "cli-attributes", "--json")
    text = run(cli_env, "search", "--dataset", "cli-attributes", "--attributes",
               "grayscale").stdout
    (line,) = [line for line in text.splitlines() if line.lstrip().startswith("1.")]
    assert "attributes: grayscale 1.00" in line and "objects" not in line
    assert line.endswith(str(tmp_path / "camera.png"))


def test_search_by_prompt(cli_env: dict[str, str],
                          indexed: tuple[str, Path, dict[str, object]]) -> None:
    dataset, _, _ = indexed
    page = json.loads(run(cli_env, "search", "--dataset", dataset, "--prompt", "a cat",
                          "--negative-prompt", "drawings", "--json").stdout)
    assert [h["name"] for h in page["results"][:2]] in (
        ["chelsea.jpg", "chelsea_flip.jpg"], ["chelsea_flip.jpg", "chelsea.jpg"])
    assert page["results"][0]["score"] > 0.5 and page["warnings"] == []
    human = run(cli_env, "search", "--dataset", dataset, "--prompt", "quantum entanglement")
    assert "note: " in human.stdout and "quantum" in human.stdout
    assert "0 match(es)" in human.stdout
    alone = run(cli_env, "search", "--dataset", dataset, "--negative-prompt", "x", ok=False)
    assert alone.returncode == 2 and "negative_prompt needs a prompt" in alone.stderr
    mixed = run(cli_env, "search", "--dataset", dataset, "--prompt", "a cat",
                "--like", str(indexed[1] / "coffee.png"), ok=False)
    assert mixed.returncode != 0 and "no text encoder" in mixed.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--dataset", "cli"], "at least one search criterion"),
        (["search", "--dataset", "nope", "--objects", "cat"], "does not exist"),
        (["search", "--dataset", "cli", "--id", "not-a-uuid"], "must be a UUID"),
        (["search", "--dataset", "cli", "--objects", "x", "--limit", "501"], "limit"),
        (["search", "--dataset", "cli", "--objects", "x", "--limit", "251"],
         "argument --limit: must be 1..250, got 251"),
        (["search", "--dataset", "cli", "--objects", "x", "--limit", "0"], "must be 1..250"),
        (["search", "--dataset", "cli", "--objects", "x", "--threshold", "2"], "threshold"),
        (["search", "--dataset", "cli", "--objects", "x", "--min-similarity", "1.5"],
         "min_similarity"),
        (["search", "--dataset", "cli", "--prompt", "a cat", "--min-similarity", "0.5"],
         "use threshold"),
        (["search", "--dataset", "cli", "--like", "/no/such.jpg"], "no such file"),
        (["search", "--dataset", "cli", "--box", "0,0,1,1"], "--box needs --like"),
        (["remove", "--dataset", "cli"], "at least one PATH"),
        (["show", "123"], "must be a UUID"),
        (["show", "00000000-0000-0000-0000-000000000000"], "does not exist"),
        (["remove", "/tmp/x.jpg", "--dataset", "never-made"], "does not exist"),
        (["remove", "--dataset", "cli", "--id", "nope"], "must be a UUID"),
        (["index", "/tmp", "--dataset", " spaced "], "dataset name"),
        (["search", "--dataset", "cli", "--objects", "x", "--offset", "-1"], "offset"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    cli_env: dict[str, str], indexed: tuple[str, Path, dict[str, object]],
    args: list[str], message: str,
) -> None:
    result = run(cli_env, *args, ok=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_box_and_corrupt_query_image(
    cli_env: dict[str, str], indexed: tuple[str, Path, dict[str, object]], tmp_path: Path
) -> None:
    dataset, root, _ = indexed
    bad_box = run(cli_env, "search", "--dataset", dataset, "--like", str(root / "coffee.png"),
                  "--box", "0.9,0.9,0.5,0.5", ok=False)
    assert bad_box.returncode == 2 and "inside the image" in bad_box.stderr
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"junk")
    result = run(cli_env, "search", "--dataset", dataset, "--like", str(junk), ok=False)
    assert result.returncode == 2 and "not a recognised image" in result.stderr


def test_missing_path_is_bad_input(cli_env: dict[str, str], tmp_path: Path,
                                   photos: dict[str, Image.Image]) -> None:
    ghost = str(tmp_path / "ghost")
    alone = run(cli_env, "index", ghost, "--dataset", "cli-ghost", "--json", ok=False)
    assert alone.returncode == 2 and alone.stdout == ""
    assert f"no such file or directory: {ghost}" in alone.stderr
    photos["coins"].save(tmp_path / "coins.png")
    # With a good path beside it, nothing is indexed: the user reruns with the fixed path.
    mixed = run(cli_env, "index", str(tmp_path / "coins.png"), ghost, "--dataset", "cli-ghost",
                ok=False)
    assert mixed.returncode == 2 and ghost in mixed.stderr and "Traceback" not in mixed.stderr
    listing = json.loads(run(cli_env, "datasets", "--json").stdout)
    assert "cli-ghost" not in {d["name"] for d in listing}


def test_remove_then_search(cli_env: dict[str, str], tmp_path: Path,
                            photos: dict[str, Image.Image]) -> None:
    photos["coins"].save(tmp_path / "coins.png")
    run(cli_env, "index", str(tmp_path), "--dataset", "cli-remove", "--json")
    removed = json.loads(run(cli_env, "remove", str(tmp_path / "coins.png"),
                             "--dataset", "cli-remove", "--json").stdout)
    assert removed["removed"] == 1
    page = json.loads(run(cli_env, "search", "--dataset", "cli-remove", "--folder", "/",
                          "--json").stdout)
    assert page["total"] == 0


def test_human_output_and_datasets(cli_env: dict[str, str],
                                   indexed: tuple[str, Path, dict[str, object]]) -> None:
    dataset, root, _ = indexed
    text = run(cli_env, "index", str(root), "--dataset", dataset).stdout
    assert "indexed 0, skipped 4, failed 1" in text
    listing = json.loads(run(cli_env, "datasets", "--json").stdout)
    assert any(d["name"] == dataset and d["indexed"] == 4 for d in listing)



def test_embedded_server_lives_as_long_as_its_users(
    cli_env: dict[str, str], indexed: tuple[str, Path, dict[str, object]], settings: Settings
) -> None:
    # Each CLI process above attached to the server and the last one out stopped it.
    assert run(cli_env, "db", "status").stdout.endswith(": stopped\n")
    with connect(settings) as conn:  # this process becomes a user: the server starts
        conn.execute("SELECT 1")
        assert run(cli_env, "db", "status").stdout.endswith(": running\n")
        # A CLI process attaching and leaving must not stop it under us.
        run(cli_env, "datasets")
        assert conn.execute("SELECT 1 AS one").fetchone() == {"one": 1}

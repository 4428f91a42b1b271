"""The curation views in a real browser: a dataset's near-duplicate clusters with the
keeper marked, its leakage across splits, its outliers and its label doubts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from tests.curation_photos import AUGMENTATIONS
from tests.test_server_support import Api, Keys, add, b64, jpeg, new_dataset

if TYPE_CHECKING:
    from tests.web_support import Page

pytest_plugins = ["tests.test_server_support", "tests.web_support"]


def _ready(page: Page) -> bool:
    return page.by_id("curate-body").get_attribute("data-state") == "ready"


def test_curation_views(page: Page, web_api: Api, web_keys: Keys,
                        photos: dict[str, Image.Image], shots: Path) -> None:
    name = f"web-curate-{time.monotonic_ns()}"
    dataset = new_dataset(web_api, name)
    small = AUGMENTATIONS["light"]["resize"](photos["chelsea"])
    added = add(web_api, dataset, [
        {"base64": b64(jpeg(photos["chelsea"], 95)), "name": "cat.jpg", "split": "train"},
        {"base64": b64(jpeg(small, 95)), "name": "cat_small.jpg", "split": "test"},
        {"base64": b64(jpeg(photos["coffee"], 95)), "name": "cup.jpg", "split": "train",
         "annotations": {"rocket": 1}},
    ])
    ids = {a["name"]: a["id"] for a in added}
    page.open(f"/?ds={name}", key=web_keys.a)
    entry = f'[data-testid=dataset][data-name="{name}"] [data-testid=dataset-curate]'
    page.wait_for(lambda: page.all(entry), "no curate button")
    page.all(entry)[0].click()
    page.wait_for(lambda: _ready(page), "duplicates did not load")
    clusters = page.all("[data-testid=curate-cluster]")
    assert len(clusters) == 1
    members = clusters[0].find_elements("css selector", "[data-testid=curate-item]")
    assert {m.get_attribute("data-id") for m in members} == {ids["cat.jpg"], ids["cat_small.jpg"]}
    keeper = clusters[0].find_elements("css selector", ".keep")
    assert [k.get_attribute("data-id") for k in keeper] == [ids["cat.jpg"]]
    page.wait_for(lambda: page.thumbnails_loaded("#curate-body img"), "thumbnails")
    page.shot(shots, "duplicates")

    page.by_id("curate-tab-leakage").click()
    page.wait_for(lambda: _ready(page) and page.all("[data-testid=curate-leak]"), "leakage")
    assert "train/test 1" in page.by_id("curate-body").text
    page.by_id("curate-tab-outliers").click()
    page.wait_for(lambda: _ready(page) and "3 image(s)" in page.by_id("curate-body").text)
    page.by_id("curate-tab-doubts").click()
    page.wait_for(lambda: _ready(page) and "1 tag contradiction" in page.by_id("curate-body").text)
    assert "cup.jpg" in page.by_id("curate-body").text
    page.shot(shots, "doubts")
    assert not page.severe_console()

"""Uploading in a real browser (a file dropped and one chosen, watched from pending to
indexed; a broken one failing with its reason), and user text rendered as text: a file
named like markup and a tag with markup show literally and run nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from tests.test_server_support import Api, Keys, jpeg, new_dataset

if TYPE_CHECKING:
    from tests.web_support import Page

pytest_plugins = ["tests.test_server_support", "tests.web_support"]

MARKUP_NAME = "<img src=x onerror=alert(1)>.jpg"
MARKUP_TAG = "<b>bold</b><script>alert(2)</script>"


def _states(page: Page) -> dict[str, str]:
    return {
        str(page.driver.execute_script(
            "return arguments[0].querySelector('.up-name').textContent", item)):
        str(item.get_attribute("data-state"))
        for item in page.all("[data-testid=upload-item]")
    }


def test_upload_files_and_watch_them_become_indexed(
    page: Page, web_api: Api, web_keys: Keys, photos: dict[str, Image.Image], shots: Path,
    tmp_path: Path,
) -> None:
    name = f"web-upload-{time.monotonic_ns()}"
    new_dataset(web_api, name)
    page.open(f"/?ds={name}", key=web_keys.a)
    assert page.by_id("upload").is_displayed()
    assert name in page.by_id("upload-target").text
    # One file dropped, one chosen with the file picker, one that is no image at all.
    page.drop_file("upload-zone", "cat.jpg", jpeg(photos["chelsea"]))
    chosen = tmp_path / "rocket.jpg"
    chosen.write_bytes(jpeg(photos["rocket"]))
    page.by_id("upload-files").send_keys(str(chosen))
    page.drop_file("upload-zone", "broken.jpg", b"\xff\xd8\xff\xe0 this is not a jpeg")
    page.wait_for(lambda: _states(page) == {
        "cat.jpg": "indexed", "rocket.jpg": "indexed", "broken.jpg": "failed"},
        "uploads did not finish", timeout=120)
    failed = [i for i in page.all("[data-testid=upload-item]")
              if i.get_attribute("data-state") == "failed"]
    assert "failed:" in failed[0].text  # with the reason
    page.shot(shots, "uploaded")
    # The dataset's counts follow, and its failed images are listed with their reasons.
    entry = f'[data-testid=dataset][data-name="{name}"]'
    page.wait_for(lambda: "1 failed" in page.driver.find_element("css selector", entry).text)
    assert "3 images" in page.driver.find_element("css selector", entry).text
    page.click(f"{entry} [data-testid=dataset-failed]")
    page.wait_for(lambda: page.all("[data-testid=failed-image]"))
    assert "broken.jpg" in page.all("[data-testid=failed-image]")[0].text
    # The uploaded images are searchable at once.
    page.search("a cat")
    assert page.result_names()[0] == "cat.jpg"
    # A folder (picked): its tree becomes the images' folders.
    (tmp_path / "trip" / "day1").mkdir(parents=True)
    (tmp_path / "trip" / "day1" / "cup.jpg").write_bytes(jpeg(photos["coffee"]))
    (tmp_path / "trip" / "notes.txt").write_text("not an image")
    page.by_id("upload-folder").send_keys(str(tmp_path / "trip"))
    page.wait_for(lambda: _states(page).get("trip/day1/cup.jpg") == "indexed", timeout=120)
    page.wait_for(lambda: page.all('#facets input[data-value="/trip/day1"]'), "no folder facet")
    assert not page.severe_console()


def test_user_text_is_rendered_as_text_never_as_html(
    page: Page, web_api: Api, web_keys: Keys, photos: dict[str, Image.Image], shots: Path,
) -> None:
    name = f"web-xss-{time.monotonic_ns()}"
    new_dataset(web_api, name)
    page.open(f"/?ds={name}", key=web_keys.a)
    page.drop_file("upload-zone", MARKUP_NAME, jpeg(photos["coffee"]))
    page.wait_for(lambda: _states(page) == {MARKUP_NAME: "indexed"}, timeout=120)
    page.search("a cup of coffee")
    assert page.result_names() == [MARKUP_NAME]
    assert MARKUP_NAME in page.by_id("results").text  # visible, literally
    # A tag with markup, added in the detail view.
    page.all("#results [data-testid=result]")[0].click()
    page.wait_for(lambda: page.by_id("detail").get_attribute("data-state") == "ready")
    assert page.by_id("detail-title").text == MARKUP_NAME
    page.by_id("tag-input").send_keys(MARKUP_TAG)
    page.by_id("tag-add").click()
    page.wait_for(lambda: MARKUP_TAG in page.by_id("detail-tags").text, "tag not shown")
    assert web_api.ok("GET", f"/v1/images/{page.by_id('detail').get_attribute('data-id')}")[
        "tags"] == [MARKUP_TAG]
    page.shot(shots, "markup-as-text")
    page.by_id("detail-close").click()
    # The tag shows in the facets as text too; reloading renders it all again.
    page.driver.refresh()
    page.wait_ready()
    page.wait_for(lambda: MARKUP_TAG in page.by_id("facets").text)
    assert page.alert_text() is None
    executed = page.driver.execute_script(
        "return document.querySelectorAll("
        "'img[src=\"x\"], #results b, #facets b, script:not([src])').length")
    assert executed == 0
    assert not page.severe_console()

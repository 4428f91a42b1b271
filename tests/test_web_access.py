"""The web app in a real browser: signing in with a key, a wrong key, a read-only key, and
what the page keeps (the key only in this tab's sessionStorage, never in a URL)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from selenium.webdriver.common.keys import Keys as KeyPress
from selenium.webdriver.remote.webdriver import WebDriver

from pixdex.config import Settings
from pixdex.server import start
from tests.test_server_support import Keys, jpeg

if TYPE_CHECKING:
    from tests.web_support import Page

pytest_plugins = ["tests.test_server_support", "tests.web_support"]


def test_open_the_page_and_enter_a_key(page: Page, web_keys: Keys, samples: str,
                                       shots: Path) -> None:
    page.open("/")
    page.wait_for(lambda: page.body_state() == "login", "no sign-in form")
    assert page.by_id("api-key").get_attribute("type") == "password"
    page.shot(shots, "login")
    page.sign_in(web_keys.a)
    page.wait_ready()
    assert web_keys.workspace_a in page.by_id("whoami").text
    # The workspace's datasets with their counts.
    names = [e.get_attribute("data-name") for e in page.all("[data-testid=dataset]")]
    assert samples in names
    counts = page.driver.find_element(
        "css selector",
        f'[data-testid=dataset][data-name="{samples}"] [data-testid=dataset-counts]')
    assert "8 images" in counts.text and "8 indexed" in counts.text
    # Write controls are there for a write key.
    assert page.all("#upload-zone") and page.all("#new-dataset")
    # The key: in this tab's sessionStorage, never in localStorage, a cookie or the URL.
    stored = page.driver.execute_script(
        "return [sessionStorage.getItem('pixdex.key'), JSON.stringify(localStorage),"
        " document.cookie]")
    assert stored == [web_keys.a, "{}", ""]
    assert web_keys.a not in page.driver.current_url
    # Reloading keeps the tab signed in; the results (no query: newest first) are there.
    page.driver.refresh()
    page.wait_ready()
    assert len(page.result_names()) >= 8
    page.wait_for(page.thumbnails_loaded, "thumbnails did not load")
    srcs = [i.get_attribute("src") or "" for i in page.all("#results img")]
    assert srcs and all(s.startswith("blob:") for s in srcs if s)
    assert not page.severe_console()


def test_a_wrong_key_is_refused_with_a_message(page: Page, web_keys: Keys, shots: Path) -> None:
    page.open("/")
    page.wait_for(lambda: page.body_state() == "login")
    page.sign_in("pdx_not_a_real_key")
    page.wait_for(lambda: "not accepted" in page.by_id("login-error").text, "no error shown")
    assert page.body_state() == "login" and not page.by_id("app").is_displayed()
    assert page.driver.execute_script("return sessionStorage.getItem('pixdex.key')") is None
    page.shot(shots, "wrong-key")
    # And it asks again: the right key now opens the app.
    page.sign_in(web_keys.a)
    page.wait_ready()
    # A key in the tab that the server stops accepting sends the page back to the form.
    page.driver.execute_script("sessionStorage.setItem('pixdex.key', 'pdx_revoked')")
    page.driver.refresh()
    page.wait_for(lambda: page.body_state() == "login")
    assert "not accepted" in page.by_id("login-error").text


def test_a_read_only_key_sees_no_upload_or_edit_controls(
    page: Page, web_keys: Keys, samples: str, shots: Path, photos: dict[str, Image.Image]
) -> None:
    page.open(f"/?ds={samples}&tag=cat", key=web_keys.a_read)
    assert "read-only" in page.by_id("whoami").text
    for element_id in ("upload", "upload-zone", "upload-files", "new-dataset", "tag-form"):
        assert not page.all(f"#{element_id}"), element_id
    page.all("#results [data-testid=result]")[0].click()
    page.wait_for(lambda: page.by_id("detail").get_attribute("data-state") == "ready")
    assert not page.all("#detail-tags button[aria-label^='Remove tag']")
    assert page.all("[data-testid=user-tag]")  # tags are shown, not editable
    page.shot(shots, "read-only-detail")
    page.by_id("detail-close").click()
    # Searching by image needs no write: the image goes inline (no anchor is made).
    page.driver.get(f"{page.url}/?ds={samples}")
    page.wait_ready()
    before = page.searches()
    page.drop_file("query-drop", "q.jpg", jpeg(photos["coffee"]))
    page.wait_for(lambda: page.searches() > before and page.status_state() == "done")
    assert page.result_names()[0] == "coffee.jpg" and "anchor" not in page.query()
    assert not page.severe_console()


def test_a_server_without_keys_opens_straight_in(
    driver: WebDriver, settings: Settings, web_keys: Keys, samples: str, shots: Path
) -> None:
    from tests.web_support import Page

    # `pixdex serve --no-auth`: every request acts in one workspace, with write scope.
    open_settings = settings.model_copy(
        update={"require_api_keys": False, "workspace": web_keys.workspace_a})
    server = start(open_settings)
    try:
        page = Page(driver, server.url)
        page.open(f"/?ds={samples}")
        page.wait_ready()
        assert not page.by_id("login").is_displayed()
        assert "no key needed" in page.by_id("whoami").text
        assert not page.by_id("logout").is_displayed()
        assert len(page.result_names()) == 8
        page.wait_for(page.thumbnails_loaded, "thumbnails did not load")
        assert page.by_id("upload").is_displayed()
        page.shot(shots, "no-auth")
    finally:
        server.stop()


def test_accessible_basics_and_usable_at_360_px(
    page: Page, web_keys: Keys, samples: str, shots: Path
) -> None:
    page.open(f"/?ds={samples}&q=a+cat", key=web_keys.a)
    page.wait_for(page.thumbnails_loaded, "thumbnails did not load")
    # Every visible control has a name; every image a text alternative.
    unnamed = page.driver.execute_script("""
        const named = (e) => e.labels?.length || e.getAttribute('aria-label')
          || e.textContent.trim() || e.title;
        return [...document.querySelectorAll('input, select, button, textarea')]
          .filter((e) => e.type !== 'file' && e.offsetParent !== null && !named(e))
          .map((e) => e.outerHTML.slice(0, 80));""")
    assert unnamed == []
    assert all(i.get_attribute("alt") for i in page.all("#results img"))
    # Focus is visible: a result reached with the keyboard draws a ring.
    page.all("#results [data-testid=result]")[0].send_keys(KeyPress.ARROW_RIGHT)
    ring = page.driver.execute_script(
        "return getComputedStyle(document.activeElement).boxShadow")
    assert ring and ring != "none"
    # 360 px wide: nothing wider than the screen, results two by two.
    page.driver.set_window_size(360, 800)
    try:
        width = page.driver.execute_script("return window.innerWidth")
        page.wait_for(lambda: page.driver.execute_script(
            "return document.documentElement.scrollWidth") <= width)
        boxes = [r.rect for r in page.all("#results [data-testid=result]")[:2]]
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[1]["x"] + boxes[1]["width"] <= width
        page.shot(shots, "narrow")
    finally:
        page.driver.set_window_size(1280, 900)

"""Driving the web app in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages) through Selenium: the driver fixture, a small page helper and
the sample dataset the browser tests search.

Nothing is downloaded: the driver and the browser are the system's (passing their paths
keeps selenium-manager from fetching any). Without them the tests fail and say what to
install; they do not skip.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageEnhance, ImageOps
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from pixdex.config import Settings
from pixdex.server import RunningServer
from tests.test_server_support import Api, Keys, add, b64, jpeg, make_keys, new_dataset

CHROMIUM = Path(os.environ.get("PIXDEX_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("PIXDEX_CHROMEDRIVER", "/usr/bin/chromedriver"))
INSTALL_HINT = (
    "the browser tests need Debian's chromium and chromedriver: "
    "`sudo apt-get install chromium chromium-driver` (./run test installs them when root); "
    "or point PIXDEX_CHROMIUM / PIXDEX_CHROMEDRIVER at them"
)
WAIT = 60.0


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER)
               if not (p.is_file() and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: {INSTALL_HINT}", pytrace=False)


_click = WebElement.click


def _click_in_view(self: WebElement) -> None:
    """Selenium scrolls a target to the window's top edge, under the page's sticky header,
    which then takes the click: bring it to the middle first, as a person would see it."""
    self.parent.execute_script(
        "arguments[0].scrollIntoView({block: 'center', inline: 'center'})", self
    )
    _click(self)


WebElement.click = _click_in_view  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    _require_browser()
    # selenium-manager must never look for (and download) a driver or a browser.
    os.environ["SE_OFFLINE"] = "true"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,900", "--no-first-run",
                     "--disable-extensions", "--disable-background-networking",
                     "--lang=en-US"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER))
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_window_size(1280, 900)
    yield browser
    browser.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (kept by pytest's tmp_path retention)."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


class Page:
    """The app in the browser: navigation, waits and the elements the tests use."""

    def __init__(self, driver: webdriver.Chrome, url: str) -> None:
        self.driver = driver
        self.url = url

    def open(self, path: str = "/", key: str | None = None, width: int = 1280) -> Page:
        self.driver.set_window_size(width, 900)
        self.driver.get(self.url + "/static/favicon.svg")  # same origin: clear the tab's key
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.url + path)
        if key is not None:
            self.wait_for(lambda: self.body_state() == "login")
            self.sign_in(key)
            self.wait_ready()
        return self

    def sign_in(self, key: str) -> None:
        field = self.by_id("api-key")
        field.clear()
        field.send_keys(key)
        self.by_id("login-submit").click()

    def body_state(self) -> str:
        return str(self.driver.execute_script("return document.body.dataset.state || ''"))

    def wait_ready(self) -> None:
        self.wait_for(lambda: self.body_state() == "ready", "the app did not open")
        self.wait_results()

    def wait_results(self) -> None:
        self.wait_for(lambda: self.status_state() in ("done", "error"), "no search answer")

    def status_state(self) -> str:
        return str(self.by_id("status").get_attribute("data-state") or "")

    def wait_for(
        self, condition: Callable[[], Any], message: str = "", timeout: float = WAIT
    ) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
                lambda _: condition())
        except TimeoutException:
            pytest.fail(f"{message or 'condition not met'} within {timeout:.0f} s; "
                        f"{self.describe()}", pytrace=True)

    def describe(self) -> str:
        """Where the page stands, for a failure message."""
        try:
            state = self.driver.execute_script(
                "const t = (id) => document.getElementById(id)?.textContent?.slice(0, 200);"
                "return {url: location.href, body: document.body?.dataset.state,"
                " status: t('status'), login: t('login-error'), toast: t('toast')}")
        except WebDriverException as exc:
            state = f"(page unreadable: {exc.msg})"
        try:
            console = self.driver.get_log("browser")[-5:]
        except WebDriverException:
            console = []
        return f"page: {state}; console: {[e['message'][:200] for e in console]}"

    def by_id(self, element_id: str) -> WebElement:
        return self.driver.find_element(By.ID, element_id)

    def click(self, css: str, message: str = "") -> None:
        """Click the element ``css`` finds, again if a re-render replaced it between the
        find and the click (lists that refresh themselves do)."""
        def clicked() -> bool:
            try:
                self.driver.find_element(By.CSS_SELECTOR, css).click()
            except (StaleElementReferenceException, NoSuchElementException):
                return False
            return True
        self.wait_for(clicked, message or f"could not click {css}")

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def facet(self, key: str, value: str) -> WebElement:
        """The label of facet ``key``'s option ``value`` (clicking it toggles the filter)."""
        option = self.driver.find_element(
            By.CSS_SELECTOR, f'#facets input[data-facet="{key}"][data-value="{value}"]')
        label = f'label[for="{option.get_attribute("id")}"]'
        return self.driver.find_element(By.CSS_SELECTOR, label)

    def result_names(self) -> list[str]:
        return [str(self.driver.execute_script("return arguments[0].textContent", e))
                for e in self.all("#results [data-testid=result-name]")]

    def query(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs, urlsplit

        return parse_qs(urlsplit(self.driver.current_url).query)

    def search(self, prompt: str) -> None:
        field = self.by_id("prompt")
        field.clear()
        field.send_keys(prompt)
        before = self.searches()
        self.by_id("search-button").click()
        self.wait_for(lambda: self.searches() > before and self.status_state() in ("done", "error"))

    def searches(self) -> int:
        return int(self.driver.execute_script("return (window.pixdexTimings || []).length"))

    def thumbnails_loaded(self, css: str = "#results img") -> bool:
        images = self.all(css)
        return bool(images) and all(
            self.driver.execute_script(
                "return arguments[0].complete && arguments[0].naturalWidth > 0", i)
            for i in images if i.is_displayed())

    def drop_file(self, target_id: str, name: str, data: bytes, mime: str = "image/jpeg") -> None:
        """A real drop event carrying a File, as dragging from the desktop makes."""
        self.driver.execute_script(
            """
            const [id, name, b64, mime] = arguments;
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: mime }));
            const target = document.getElementById(id);
            for (const type of ["dragenter", "dragover", "drop"]) {
              target.dispatchEvent(new DragEvent(
                type, { bubbles: true, cancelable: true, dataTransfer: transfer }));
            }
            """, target_id, name, base64.b64encode(data).decode("ascii"), mime)

    def alert_text(self) -> str | None:
        try:
            return str(self.driver.switch_to.alert.text)
        except NoAlertPresentException:
            return None

    def severe_console(self) -> list[str]:
        # Script errors and CSP violations; not the network's own 4xx lines (the page asks
        # /v1/me without a key first, on purpose).
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and "Failed to load resource" not in e["message"]]

    def shot(self, folder: Path, name: str) -> Path:
        path = folder / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path


@pytest.fixture
def page(driver: webdriver.Chrome, api_server: RunningServer) -> Page:
    driver.get_log("browser")  # start each test with an empty console
    return Page(driver, api_server.url)


def edited_copies(photos: dict[str, Image.Image], count: int) -> list[tuple[str, bytes]]:
    """``count`` distinct images made from the sample photos by simple edits."""
    names = ["chelsea", "coffee", "rocket", "astronaut", "camera"]
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        base = photos[names[i % len(names)]]
        step = i // len(names)
        picture = ImageEnhance.Brightness(base).enhance(0.55 + 0.07 * (step % 10))
        if step % 2:
            picture = ImageOps.mirror(picture)
        w, h = picture.size
        cut = 2 + step * 3
        picture = picture.crop((cut, cut, w - cut, h - cut)).resize((320, 240))
        out.append((f"{names[i % len(names)]}_{i:03d}.jpg", jpeg(picture, quality=80)))
    return out


@pytest.fixture(scope="session")
def web_keys(settings: Settings) -> Keys:
    """Keys of workspaces of the browser tests' own: what the page shows (a whole
    workspace when no dataset is chosen) never depends on what other tests stored."""
    return make_keys(settings, "web")


@pytest.fixture(scope="session")
def web_api(api_server: RunningServer, web_keys: Keys) -> Api:
    return Api(api_server.url, web_keys.a)


@pytest.fixture(scope="session")
def samples(web_api: Api, image_files: dict[str, bytes]) -> str:
    """A dataset of the sample photos with folders, tags, splits: its name."""
    name = f"web-samples-{os.getpid()}"
    dataset = new_dataset(web_api, name)
    meta: dict[str, dict[str, Any]] = {
        "chelsea.jpg": {"folder": "/pets/cats", "tags": ["cat", "favourite"], "split": "train"},
        "chelsea_flip.jpg": {"folder": "/pets/cats", "tags": ["cat"], "split": "train"},
        "coffee.jpg": {"folder": "/food", "tags": ["drink"], "split": "valid",
                       "annotations": {"cup": 1}},
        "coffee_flip.jpg": {"folder": "/food", "tags": ["drink"], "split": "valid"},
        "rocket.jpg": {"folder": "/space", "split": "train", "batch_id": "b1"},
        "astronaut.jpg": {"folder": "/space", "split": "test", "batch_id": "b1"},
        "camera.jpg": {"folder": "/misc", "split": "test"},
        "coins.png": {"folder": "/misc", "split": "test"},
    }
    images = [{"base64": b64(data), "name": file, **meta[file]}
              for file, data in image_files.items()]
    added = add(web_api, dataset, images)
    assert all(a["status"] == "indexed" for a in added), added
    return name


__all__ = [
    "Keys", "Page", "driver", "edited_copies", "page", "samples", "shots", "web_api", "web_keys",
]

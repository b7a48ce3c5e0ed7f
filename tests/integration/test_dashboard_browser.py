"""The dashboard in a real browser: headless Chromium logs in and watches an agent arrive.

Selenium drives Debian's ``chromium`` through Debian's ``chromedriver`` (``make test``
installs both). The page is loaded once; everything after that must arrive through
its own polling, which the test proves by leaving a marker in ``window`` that a
reload would wipe.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.conftest import PASSWORD, USER
from tests.integration.test_dashboard import ADMIN, ADMIN_PASSWORD, fetch_once
from tests.support.processes import AgentProcess, ServerProcess
from tests.support.target import TargetProcess

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 20.0

pytestmark = pytest.mark.skipif(
    not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (make test installs them: make deb-packages)",
)


def start_chrome(profile: Path, width: int = 1366, height: int = 768) -> WebDriver:
    """Headless Chromium with a fresh profile and nothing talking to the internet."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    set_viewport(browser, width, height)
    return browser


def set_viewport(
    browser: WebDriver, width: int, height: int, mobile: bool = False, scale: int = 1
) -> None:
    """Make the page's viewport exactly ``width`` by ``height`` CSS pixels."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
    )


def log_in(browser: WebDriver, server: ServerProcess, username: str, password: str) -> None:
    """Log in through the admin's login form and land on the dashboard."""
    browser.get(f"{server.http_url}/dashboard/")
    assert "/admin/login/" in browser.current_url  # anonymous visitors are sent to log in
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, WAIT).until(
        lambda b: b.current_url.endswith("/dashboard/") and b.find_elements(By.ID, "agents-body")
    )


def agent_rows(browser: WebDriver, name: str, state: str = "") -> list[WebElement]:
    selector = f'tr[data-agent="{name}"]' + (f'[data-state="{state}"]' if state else "")
    return browser.find_elements(By.CSS_SELECTOR, selector)


def text_of(browser: WebDriver, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def page_errors(browser: WebDriver) -> list[str]:
    """What the page wrote to the console as errors (script errors, failed loads)."""
    return [str(e["message"]) for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def server(tmp: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp, env={"EXITPOOL_FLUSH_INTERVAL": "1"})
    process.cli("migrate", "--verbosity", "0")
    process.create_admin(ADMIN, ADMIN_PASSWORD)
    process.cli("proxyuser", USER, "--password", PASSWORD)
    process.start()
    yield process
    process.terminate()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    chrome = start_chrome(tmp_path / "chrome-profile")
    yield chrome
    chrome.quit()


def test_a_staff_member_sees_an_agent_come_online_and_carry_traffic_without_reloading(
    tmp: Path,
    server: ServerProcess,
    key: str,
    target: TargetProcess,
    browser: WebDriver,
) -> None:
    log_in(browser, server, ADMIN, ADMIN_PASSWORD)
    browser.get_log("browser")  # forget the login page's messages
    browser.execute_script("window.notReloaded = true;")
    assert agent_rows(browser, "pc-live") == []
    assert text_of(browser, "stat-online").startswith("0")

    agent = AgentProcess(tmp, server, key, "pc-live", "127.0.0.2").start()
    try:
        WebDriverWait(browser, WAIT).until(lambda b: agent_rows(b, "pc-live", "online"))
        assert text_of(browser, "stat-online").startswith("1")

        assert fetch_once(server, f"{target.url}/bytes/200000") == 200
        destination = f"127.0.0.3:{target.port}"
        WebDriverWait(browser, WAIT).until(lambda b: destination in text_of(b, "destinations-list"))
        WebDriverWait(browser, WAIT).until(lambda b: USER in text_of(b, "users-list"))
        assert not text_of(browser, "stat-requests").startswith("0 ")
        assert browser.execute_script("return window.notReloaded === true;")
        assert page_errors(browser) == []
    finally:
        agent.terminate()


def test_the_page_says_it_is_reconnecting_while_the_server_restarts_then_carries_on(
    tmp: Path, server: ServerProcess, key: str, browser: WebDriver
) -> None:
    agent = AgentProcess(tmp, server, key, "pc-steady", "127.0.0.4").start()
    try:
        log_in(browser, server, ADMIN, ADMIN_PASSWORD)
        browser.execute_script("window.notReloaded = true;")
        assert agent_rows(browser, "pc-steady", "online")

        server.terminate()
        WebDriverWait(browser, WAIT).until(
            lambda b: "Lost contact with the server" in text_of(b, "banner")
        )
        assert text_of(browser, "status-text") == "Reconnecting…"

        server.start()
        WebDriverWait(browser, WAIT).until(lambda b: text_of(b, "status-text") == "Live")
        assert not browser.find_element(By.ID, "banner").is_displayed()
        WebDriverWait(browser, WAIT).until(lambda b: agent_rows(b, "pc-steady", "online"))
        assert browser.execute_script("return window.notReloaded === true;")
    finally:
        agent.terminate()


def test_the_page_says_so_when_the_session_has_ended(
    server: ServerProcess, browser: WebDriver
) -> None:
    log_in(browser, server, ADMIN, ADMIN_PASSWORD)

    browser.delete_cookie("sessionid")

    WebDriverWait(browser, WAIT).until(lambda b: "session has ended" in text_of(b, "banner"))
    link = browser.find_element(By.CSS_SELECTOR, "#banner a")
    assert link.get_attribute("href") == f"{server.http_url}/admin/login/?next=/dashboard/"
    assert text_of(browser, "status-text") == "Signed out"

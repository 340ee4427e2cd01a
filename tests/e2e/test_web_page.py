"""The web page in a real headless Chromium against a real ``voxgate serve`` on the shipped models.

Chromium's fake microphone plays a committed WAV into the live page, which streams it over the Watson
WebSocket; the models page creates, trains and deletes a custom language model through its buttons.
A screenshot of each page goes to ``benchmarks/reports/ui/``. Skipped, with the reason, where no
Chromium and chromedriver are installed (``scripts/setup.sh`` installs Debian's when it can).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
import websocket
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.capacity import ServerProcess, free_port
from tests.conftest import FIXTURES, REPO

EXPECTED = dict(line.split("\t") for line in (FIXTURES / "transcripts.tsv").read_text().splitlines() if line)
KEY = "ui-key"
SCREENSHOTS = REPO / "benchmarks" / "reports" / "ui"
WAIT_S = 120
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

NO_BROWSER = ("no chromium and chromedriver found (Debian: apt-get install chromium chromium-driver, as "
              "scripts/setup.sh does when run as root)")


@pytest.fixture(scope="module", autouse=True)
def _browser_installed() -> None:
    """The page is tested in a real browser: skipped without one, except in CI, where that is a failure."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the web page in a browser: {NO_BROWSER}")
        pytest.skip(NO_BROWSER)


@pytest.fixture(scope="module")
def page_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``voxgate serve`` on the shipped models with one API key, a fresh data directory and this checkout's code."""
    root = tmp_path_factory.mktemp("web-page")
    config = root / "server.toml"
    # One session at a time, so that a test can fill the server and see the page's 503 in words.
    config.write_text(f'[server]\nmax_sessions = 1\n\n[[credentials]]\ninstance = "ui"\napi_key = "{KEY}"\n')
    with pytest.MonkeyPatch.context() as patch:
        # The subprocess imports this checkout (as the tests do), not whatever the venv was installed from.
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))))
        server = ServerProcess(config, free_port(), root / "server.log")
        server.command += ["--data-dir", str(root / "data")]
        with server:
            server.start(ready_timeout_s=240)
            yield server


def _base(server: ServerProcess) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture()
def browser() -> Iterator[Callable[..., WebDriver]]:
    """Start headless Chromium (optionally with a WAV as its microphone); quit it after the test."""
    started: list[WebDriver] = []

    def start(*, microphone: Path | None = None, height: int = 900) -> WebDriver:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size=1280,{height}",
                         "--autoplay-policy=no-user-gesture-required"):
            options.add_argument(argument)
        if microphone is not None:
            # %noloop: the file plays once, then the fake device gives silence (the endpoint closes the phrase).
            options.add_argument("--use-fake-ui-for-media-stream")
            options.add_argument("--use-fake-device-for-media-stream")
            options.add_argument(f"--use-file-for-fake-audio-capture={microphone}%noloop")
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()


def _wait(driver: WebDriver, condition: Callable[[WebDriver], object], what: str, timeout_s: float = WAIT_S):
    return WebDriverWait(driver, timeout_s, poll_frequency=0.2).until(condition, message=f"waited for {what}")


def _text(driver: WebDriver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).text


def _open(driver: WebDriver, url: str, key: str) -> None:
    """Load a page and type the API key into it, as a person would."""
    driver.get(url)
    _wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true", "the page")
    driver.find_element(By.ID, "api-key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#key-form button").click()
    _wait(driver, lambda d: _text(d, "key-hint"), "the key check")


def _screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOTS / name))


def _finals(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#transcript .final .words")]


def test_live_page_streams_the_microphone_interim_then_final(page_server, browser, tmp_path) -> None:
    # hello.wav's first word starts at its first sample; a person clicks Start, then speaks: half a
    # second of silence first, so the test does not hang on when the fake device starts playing
    # (a capture that started early clipped "read" to "beat" in some full CI runs)
    samples, rate = soundfile.read(FIXTURES / "hello.wav", dtype="int16")
    microphone = tmp_path / "hello-after-a-pause.wav"
    soundfile.write(microphone, np.concatenate([np.zeros(rate // 2, dtype=np.int16), samples]), rate, subtype="PCM_16")
    driver = browser(microphone=microphone)
    _open(driver, _base(page_server) + "/", KEY)
    assert _text(driver, "key-hint") == "key accepted"
    driver.find_element(By.ID, "start").click()
    interims: list[str] = []

    def first_final(d: WebDriver) -> list[str]:
        interim = _text(d, "interim-text")
        if interim and interim not in interims:
            interims.append(interim)
        assert not d.find_element(By.ID, "error").is_displayed(), _text(d, "error")
        return _finals(d)

    finals = _wait(driver, first_final, "the first final")
    assert finals[0] == EXPECTED["hello.wav"]
    assert interims, "no interim text was shown before the final"
    assert driver.find_element(By.CSS_SELECTOR, "#transcript .final .latency").text.endswith(" ms")
    driver.find_element(By.ID, "stop").click()
    try:
        _wait(driver, lambda d: _text(d, "status") == "done", "the end of the request")
    except TimeoutException:
        pytest.fail(f"the request did not end: status {_text(driver, 'status')!r}, error {_text(driver, 'error')!r}")
    _screenshot(driver, "live.png")


def test_live_page_says_why_a_bad_key_is_refused(page_server, browser) -> None:
    driver = browser(microphone=FIXTURES / "hello.wav")
    _open(driver, _base(page_server) + "/", "not-the-key")
    assert "the key was refused" in _text(driver, "key-hint")
    driver.find_element(By.ID, "start").click()
    error = _wait(driver, lambda d: _text(d, "error"), "the error")
    assert error == "the server refused the connection: not authorised (401): the API key is not valid"
    assert not driver.find_element(By.ID, "start").get_attribute("disabled")


def test_live_page_says_the_server_is_at_its_session_limit(page_server, browser) -> None:
    page_server.wait_idle()  # the earlier tests' sessions are gone
    holder = websocket.create_connection(f"ws://127.0.0.1:{page_server.port}/v1/recognize?access_token={KEY}",
                                         timeout=30)  # the server's one session
    try:
        driver = browser(microphone=FIXTURES / "hello.wav")
        _open(driver, _base(page_server) + "/", KEY)
        driver.find_element(By.ID, "start").click()
        error = _wait(driver, lambda d: _text(d, "error"), "the error")
    finally:
        holder.close()
    assert error.startswith("the server refused the connection: server busy (503): The server is at its limit of 1 "
                            "concurrent"), error
    page_server.wait_idle()


def test_live_page_transcribes_an_uploaded_file(page_server, browser) -> None:
    driver = browser()
    _open(driver, _base(page_server) + "/", KEY)
    driver.find_element(By.ID, "file").send_keys(str(FIXTURES / "hello.flac"))
    finals = _wait(driver, _finals, "the file's transcript")
    assert finals == [EXPECTED["hello.flac"]]
    assert _text(driver, "status").startswith("hello.flac: transcribed in ")


def _api(server: ServerProcess, path: str) -> dict:
    request = urllib.request.Request(_base(server) + path, headers={"Authorization": f"Bearer {KEY}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _custom_rows(driver: WebDriver) -> dict[str, str]:
    """Custom model id -> status as the table shows them (read in one go: the page re-renders while it polls)."""
    return dict(driver.execute_script(
        "return [...document.querySelectorAll('#custom-models tbody tr')].map(r => [r.dataset.id, r.dataset.status])"))


def _click(driver: WebDriver, custom_id: str, action: str) -> None:
    """Click a row's button, finding it again if a re-render replaced it between finding and clicking."""
    selector = f'#custom-models tr[data-id="{custom_id}"] button[data-action="{action}"]'

    def click(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, selector).click()
        return True

    WebDriverWait(driver, 10, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        click, message=f"could not click {action} of {custom_id}")


def _status_is(custom_id: str, status: str) -> Callable[[WebDriver], bool]:
    def check(d: WebDriver) -> bool:
        return _custom_rows(d).get(custom_id) == status
    return check


def test_models_page_lists_versions_and_runs_a_custom_model_lifecycle(page_server, browser) -> None:
    driver = browser(height=1700)
    _open(driver, _base(page_server) + "/ui/models.html", KEY)

    shown = {r.get_attribute("data-version"): [c.text for c in r.find_elements(By.TAG_NAME, "td")]
             for r in driver.find_elements(By.CSS_SELECTOR, "#base-versions tbody tr")}
    expected = {v["version"]: [m["name"], v["version"], v["created"], v["adaptation_deadline"],
                               v["transcription_deadline"], v["state"]]
                for m in _api(page_server, "/v1/models")["models"] for v in m["versions"]}
    assert shown == expected
    assert {"en-US_BroadbandModel.v2026-12-01", "en-US_NarrowbandModel.v2026-05-01"} <= set(shown)
    bars = driver.find_elements(By.CSS_SELECTOR, "#timeline-svg g.row.base")
    assert len(bars) == len(expected)

    driver.find_element(By.ID, "create-name").send_keys("web page model")
    driver.find_element(By.CSS_SELECTOR, "#create-form button").click()
    _wait(driver, lambda d: _custom_rows(d), "the new model's row")
    (custom_id,) = _custom_rows(driver)
    assert _api(page_server, f"/v1/customizations/{custom_id}")["name"] == "web page model"

    _click(driver, custom_id, "train")  # nothing to train on yet: the API refuses, the page says why
    refusal = _wait(driver, lambda d: "refused" in _text(d, "message") and _text(d, "message"), "the refusal")
    assert refusal == (f"web page model: train refused: refused (400): No input data available for training "
                       f"custom model {custom_id}: add a corpus or words first")

    driver.find_element(By.ID, "corpus-text").send_keys("Please call Vorlaxa support today.\nCall Vorlaxa now!\n")
    driver.find_element(By.CSS_SELECTOR, "#corpus-form button").click()
    _wait(driver, _status_is(custom_id, "ready"), "the corpus analysis")
    _click(driver, custom_id, "train")
    _wait(driver, lambda d: _text(d, "message") == "web page model: training started", "the training to start")
    _wait(driver, _status_is(custom_id, "available"), "the training to finish")
    assert _api(page_server, f"/v1/customizations/{custom_id}")["status"] == "available"
    assert driver.find_elements(By.CSS_SELECTOR, "#timeline-svg g.row.custom")
    _screenshot(driver, "models.png")

    _click(driver, custom_id, "delete")
    _click(driver, custom_id, "delete")  # the second click confirms
    _wait(driver, lambda d: _text(d, "message") == "web page model: deleted", "the deletion")
    assert custom_id not in _custom_rows(driver)
    assert _api(page_server, "/v1/customizations")["customizations"] == []

"""`python -m jdrum.app` served on a free localhost port with a tiny untrained run, driven by a
real headless Chromium (selenium, Debian's chromium + chromium-driver) and by gradio_client:
upload, two takes, downloads, a corrupt file, the queue, cancelling, and what it refuses to
serve.

Without Chromium or Gradio these tests skip, unless JDRUM_BROWSER_TESTS=required (what
`.ci/run` sets after installing them), where they fail instead."""

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
import soundfile

from jdrum import audio
from jdrum.datasets import synth

REQUIRED = os.environ.get("JDRUM_BROWSER_TESTS") == "required"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
START_SECONDS = 240  # server start-up on a slow machine: imports, the run, the trackers
REQUEST_SECONDS = 240
UPLOAD_MB = 2  # the songs below are smaller (20 s of 16-bit mono: 1.8 MB)
SETTINGS = {  # the API's arguments of "Make drums" but the song
    "lm_name": "lm", "takes": 1, "temp": 1.0, "p": 0.9, "seed_value": 0, "weight": 1.0,
    "prime_path": None, "prime_seconds": 0.0, "api_name": "/make",
}  # fmt: skip


def _need(condition: bool, why: str):
    if not condition:
        if REQUIRED:
            pytest.fail(f"JDRUM_BROWSER_TESTS=required but {why}")
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("songs")
    x = synth.make_song(5, synth.SynthConfig(min_seconds=25, max_seconds=25)).drumless
    soundfile.write(folder / "five.wav", x[: 5 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    soundfile.write(folder / "twenty.wav", x[: 20 * audio.SAMPLE_RATE], audio.SAMPLE_RATE)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEfmt this is not audio")
    return folder


@pytest.fixture(scope="module")
def server(tiny_sampling_run, tmp_path_factory):
    """(url, workdir, the server's output file) of `python -m jdrum.app` on the tiny run."""
    _need(importable("gradio"), "Gradio is not installed (pip install -e '.[app]')")
    workdir = tmp_path_factory.mktemp("app")
    port = _free_port()
    log = open(workdir.parent / f"{workdir.name}.log", "w+")
    command = [
        sys.executable, "-m", "jdrum.app", "--run", tiny_sampling_run, "--port", str(port),
        "--workdir", str(workdir), "--max_minutes", "1", "--max_upload_mb", str(UPLOAD_MB),
    ]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"jdrum.app exited with {process.returncode}:\n{log.read()[-3000:]}")
        try:
            if _status(url) == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"jdrum.app did not serve {url} within {START_SECONDS} s")
        time.sleep(1.0)
    yield url, workdir, log
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


def importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_it_says_where_it_serves_and_that_it_is_local(server):
    url, workdir, log = server
    log.seek(0)
    text = log.read()
    assert f"on {url} (this computer only" in text and str(workdir) in text


def test_files_outside_the_apps_folder_are_refused(server, tiny_sampling_run):
    url, workdir, _ = server
    own = workdir / "results" / "note.txt"
    own.parent.mkdir(exist_ok=True)
    own.write_text("mine")
    assert _status(f"{url}/gradio_api/file={own}") == 200
    outside = [
        "/etc/passwd",
        os.path.join(tiny_sampling_run, "lm", "config.json"),
        os.path.abspath(__file__),
        f"{workdir}/results/../../{os.path.basename(tiny_sampling_run)}/lm/config.json",
        f"{workdir}/results/%2e%2e/%2e%2e/etc/passwd",
    ]
    for path in outside:
        assert _status(f"{url}/gradio_api/file={path}") in (403, 404), path


def test_an_upload_over_the_limit_is_refused(server):
    url, _, _ = server
    import httpx

    payload = {"files": ("big.wav", b"\0" * (UPLOAD_MB * 2**20 + 1), "audio/wav")}
    response = httpx.post(f"{url}/gradio_api/upload", files=payload, timeout=60)
    assert response.status_code == 413, response.text
    small = {"files": ("small.wav", b"\0" * 1000, "audio/wav")}
    assert httpx.post(f"{url}/gradio_api/upload", files=small, timeout=60).status_code == 200


def test_a_musician_gets_two_takes_in_chromium(server, songs, tmp_path):
    _need(
        CHROMIUM is not None and CHROMEDRIVER is not None,
        "Chromium and its driver are not installed (apt-get install chromium chromium-driver)",
    )
    _need(importable("selenium"), "selenium is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _, _ = server
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1400,2100",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(url)
        wait = WebDriverWait(driver, REQUEST_SECONDS)

        def upload(path):
            field = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#song input[type=file]"))
            field.send_keys(str(path))
            wait.until(lambda d: path.stem in d.find_element(By.ID, "song").text)

        def status():
            return driver.find_element(By.ID, "status").text

        upload(songs / "five.wav")
        takes = driver.find_element(By.CSS_SELECTOR, "#takes input[type=number]")
        takes.clear()
        takes.send_keys("2\n")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "2 takes of five.wav" in status() or "⚠" in status())
        assert "2 takes of five.wav" in status(), status()
        frames = soundfile.info(str(songs / "five.wav")).frames
        for k in range(2):  # both players have loaded the take: its waveform and length
            for stem in ("drums", "mix"):
                player = f"#take{k}_{stem}"
                wait.until(lambda d, p=player: "0:05" in d.find_element(By.CSS_SELECTOR, p).text)
                assert driver.find_element(By.CSS_SELECTOR, f"{player} [data-testid^=waveform]")
            links = driver.find_elements(By.CSS_SELECTOR, f"#take{k}_files a[download]")
            names = sorted(link.get_attribute("download") for link in links)
            assert names == [f"five_take{k}_drums.wav", f"five_take{k}_mix.wav"]
            for link in links:
                with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
                    data, rate = soundfile.read(io.BytesIO(response.read()))
                assert (len(data), rate) == (frames, audio.SAMPLE_RATE) and np.any(data)
        assert not any(e.is_displayed() for e in driver.find_elements(By.ID, "take2"))
        driver.save_screenshot(str(tmp_path / "app.png"))
        if os.environ.get("JDRUM_APP_SCREENSHOT"):
            driver.save_screenshot(os.environ["JDRUM_APP_SCREENSHOT"])

        driver.find_element(By.CSS_SELECTOR, "#song button[aria-label='Clear']").click()
        upload(songs / "broken.wav")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "⚠" in status())
        assert "broken.wav: not a readable audio file" in status()
        # The app keeps serving, and the earlier takes stay on the page.
        assert _status(url) == 200
        assert "0:05" in driver.find_element(By.ID, "take1_drums").text

        def idle(d):  # no request running or waiting: every status tracker hidden
            trackers = d.find_elements(By.CSS_SELECTOR, "[data-testid=status-tracker]")
            return all("hide" in (t.get_attribute("class") or "").split() for t in trackers)

        # Cancelled while it waits in the queue behind another session's request: it never runs.
        from gradio_client import Client, handle_file

        other = Client(url, verbose=False).submit(
            song_path=handle_file(str(songs / "twenty.wav")), **SETTINGS
        )
        while other.status().code.name not in ("PROCESSING", "PROGRESS"):
            assert not other.done()
            time.sleep(0.05)
        driver.find_element(By.CSS_SELECTOR, "#song button[aria-label='Clear']").click()
        upload(songs / "five.wav")
        driver.find_element(By.ID, "go").click()
        wait.until(lambda d: "queue" in d.find_element(By.TAG_NAME, "body").text)
        driver.find_element(By.ID, "cancel").click()
        assert not other.done()  # the page's request was still waiting when cancelled
        other.result(timeout=REQUEST_SECONDS)
        wait.until(lambda d: idle(d) and status() == "Cancelled: five.wav.")
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tr")
        assert len(rows) == 2 and "five.wav" in rows[1].text  # the header and the first result
    finally:
        driver.quit()


def test_a_second_request_waits_in_the_queue_and_a_request_can_be_cancelled(server, songs):
    _need(importable("gradio_client"), "gradio_client is not installed")
    from gradio_client import Client, handle_file

    url, _, _ = server
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    running = first.submit(song_path=handle_file(str(songs / "twenty.wav")), **SETTINGS)
    deadline = time.monotonic() + REQUEST_SECONDS
    while running.status().code.name not in ("PROCESSING", "PROGRESS"):
        assert time.monotonic() < deadline and not running.done()
        time.sleep(0.05)
    waiting = second.submit(song_path=handle_file(str(songs / "five.wav")), **SETTINGS)
    seen = set()
    while not waiting.done():
        update = waiting.status()
        seen.add((update.code.name, update.rank))
        if update.code.name == "IN_QUEUE" and not running.done():
            first.predict(api_name="/cancel")  # cancel the running request
        time.sleep(0.05)
    assert ("IN_QUEUE", 0) in seen  # it waited, first in line
    # Among the outputs (the API leaves out the session's state) is the status line.
    assert "Cancelled: twenty.wav." in running.result()
    assert any(str(value).startswith("1 take of five.wav") for value in waiting.result())

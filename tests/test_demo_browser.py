"""The web demo in a real headless browser (Debian's Chromium driven through its ChromeDriver by Selenium).

The page is served with a tiny model on a free port; files are uploaded through the page's file input and a
bundled example is picked; what the page shows is checked against ``lens-hf predict`` on the same files, to the
digits shown. Skipped only where no browser is installed (``.ci/run`` installs it)."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_deeplense_like
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lens_hf.demo.page import launch
from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 30
# One element per result: Gradio puts elem_classes on a block and on its inner element too.
RESULT_XPATH = "//*[contains(@class, 'lens-result') and not(ancestor::*[contains(@class, 'lens-result')])]"

pytestmark = [
    pytest.mark.skipif(
        not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
        reason="no browser: needs /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium "
        "chromium-driver; .ci/run installs them)",
    ),
    pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),  # Gradio's own use of pandas options
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page_url(model_dir) -> Iterator[str]:
    """The demo page with the tiny model, served in this process."""
    port = _free_port()
    blocks = launch(model_dir, port=port, block=False)  # what `lens-hf demo` runs
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        blocks.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1600"):
        options.add_argument(arg)
    # The Debian driver, given by path: Selenium never looks for (or downloads) one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _read(block) -> dict | None:
    """One result block as {name, error} or {name, label, percents, summary, pictures}; None while it is
    still being drawn (no error and no summary yet, or a picture not loaded)."""
    item = {"name": block.find_element(By.CSS_SELECTOR, ".lens-name").text}
    error = block.find_elements(By.CSS_SELECTOR, ".lens-error p")
    if error:
        item["error"] = error[0].text
        return item
    summary = block.find_elements(By.CSS_SELECTOR, ".lens-summary p")
    if not summary:
        return None
    label = block.find_element(By.CSS_SELECTOR, ".lens-label")
    item["label"] = label.find_element(By.CSS_SELECTOR, "[data-testid='label-output-value']").text
    item["percents"] = {
        row.find_element(By.TAG_NAME, "dt").text: row.find_element(By.TAG_NAME, "dd").text
        for row in label.find_elements(By.CSS_SELECTOR, "[data-testid$='-confidence-set']")
    }
    item["summary"] = summary[0].text
    item["pictures"] = [
        img.get_attribute("naturalWidth")
        for img in block.find_elements(By.CSS_SELECTOR, ".lens-image img, .lens-attention img")
    ]
    if len(item["pictures"]) < 2 or "0" in item["pictures"]:
        return None
    return item


def _results(driver: webdriver.Chrome, count: int) -> list[dict]:
    """Wait for ``count`` fully drawn results on the page and read them. The whole read happens inside the
    wait: Gradio may re-render the results while they are read (a stale element), and then it is read again."""

    def ready(d):
        blocks = d.find_elements(By.XPATH, RESULT_XPATH)
        if len(blocks) != count:
            return False
        items = [_read(block) for block in blocks]
        return items if all(items) else False

    return WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(ready)


def _as_shown(row: dict) -> tuple[str, dict[str, str], str]:
    """What the page must show for a ``lens-hf predict --output x.json`` row: the label, each class to whole
    percents (gr.Label rounds half up, as JavaScript's Math.round), and the 4-decimal probabilities."""
    percents = {name: f"{math.floor(row[f'p_{name}'] * 100 + 0.5)}%" for name in LABELS}
    summary = ", ".join(f"{name} {row[f'p_{name}']:.4f}" for name in LABELS)
    return row["label"], percents, summary


def test_upload_and_example_show_what_predict_prints(page_url, browser, model_dir, tmp_path, cli):
    data = write_deeplense_like(tmp_path / "data", per_class=1, seed=3)
    vortex = next((data / DEEPLENSE_FOLDERS["vortex"]).glob("*.npy"))  # an [image, m_a] object array
    subhalo = next((data / DEEPLENSE_FOLDERS["subhalo"]).glob("*.npy"))
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"\x93NUMPY truncated")

    browser.get(page_url)
    upload = WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#lens-files input[type='file']")
    )[0]
    upload.send_keys("\n".join(str(p) for p in (vortex, bad, subhalo)))
    shown = _results(browser, 3)

    out = tmp_path / "predictions.json"
    assert cli("predict", "--model", model_dir, vortex, subhalo, "--output", out).code == 0
    rows = json.loads(out.read_text())["predictions"]
    expected_error = cli("predict", "--model", model_dir, bad).err_lines
    assert [item["name"] for item in shown] == [vortex.name, bad.name, subhalo.name]
    for item, row in zip((shown[0], shown[2]), rows):
        assert (item["label"], item["percents"], item["summary"]) == _as_shown(row)
        assert item["pictures"] == ["320", "320"]  # the stretched image and the attention map, drawn
    assert [shown[1]["error"]] == [line.replace(str(bad), bad.name) for line in expected_error]

    # A bundled example, picked on the page, replaces the results.
    example = browser.find_element(By.XPATH, "//button[contains(., 'simulated Model I: subhalo')]")
    example.click()
    (item,) = _results(browser, 1)
    assert item["name"] == "subhalo.npy" and item["label"] in LABELS and item["pictures"] == ["320", "320"]

    # Offline: the page loaded nothing from anywhere but the app itself.
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources and all(url.startswith(page_url) for url in resources), resources

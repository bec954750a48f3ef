"""The server's web page in headless Chromium: upload an image, see the predicted class."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from export_helpers import exported_run
from serve_helpers import start

CHROMIUM = Path("/usr/bin/chromium")


def browser_or_skip():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not CHROMIUM.is_file() and shutil.which("chromium") is None:
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return sync_playwright


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    return exported_run(tmp_path_factory)


def test_upload_an_image_and_see_the_class(exported, tmp_path):
    sync_playwright = browser_or_skip()
    run = exported[0]
    first = (run / "splits.csv").read_text().splitlines()[1].split(",")[0]
    image = tmp_path / "upload.png"
    image.write_bytes(Path(first).read_bytes())
    running, model, _ = start(run / "export" / "model.onnx", tmp_path / "store")
    with running, sync_playwright() as playwright:
        executable = str(CHROMIUM) if CHROMIUM.is_file() else shutil.which("chromium")
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"http://127.0.0.1:{running.port}/")
            page.wait_for_selector("#card td:text('classification')")
            page.set_input_files("#file", str(image))  # the page predicts on change
            answer = page.locator("#answer")
            answer.wait_for(state="visible")
            page.wait_for_function("document.getElementById('answer').textContent.length > 0")
            predicted = answer.inner_text().split()[0]
            assert predicted in model.names
            assert page.locator("#bars .bar").count() == 3
            assert page.locator("#view").is_visible()
            assert not errors, errors
        finally:
            browser.close()
    rows = running.service.store.rows()  # the upload was recorded like any other request
    assert [r["predicted"] for r in rows] == [predicted] and rows[0]["source"] == "api"

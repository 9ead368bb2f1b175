"""The app in a real browser: headless Debian Chromium driven by Selenium.

Ticks consent (the uploader stays closed until then), uploads two real photos, waits for the checklist, runs the studio retouch and saves
screenshots into the test's tmp_path. Gradio renders file names split into stem/extension elements, so
the test waits on results (the status text, gallery images), never on file-name text.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1400,1800",
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/install_system_deps.sh)"),
]


@pytest.fixture(scope="module")
def url(app_server):
    return app_server[0]


@pytest.fixture()
def driver(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def wait_for(browser, condition, timeout: float = 120.0, what: str = "") -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.5).until(condition, message=f"timed out waiting for {what}")


def text_of(browser, selector: str) -> str:
    from selenium.webdriver.common.by import By

    elements = browser.find_elements(By.CSS_SELECTOR, selector)
    return elements[0].text if elements else ""


def test_upload_check_and_retouch_in_chromium(url, driver, real_photos, tmp_path):
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver.get(url)
    consent = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#consent input[type=checkbox]"))[0]
    assert not driver.find_elements(By.CSS_SELECTOR, "#photos input[type=file]"), "no upload before consent"
    consent.click()
    file_input = wait_for(
        driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#photos input[type=file]"), what="the uploader"
    )[0]
    file_input.send_keys(f"{real_photos['obama']}\n{real_photos['obama2']}")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#photos tbody tr")) == 2, what="two uploads")

    # Click "Check photos" until the checklist reports on both photos (an upload may still be finishing).
    deadline = time.monotonic() + 180
    while "photos usable" not in text_of(driver, "#check-status"):
        assert time.monotonic() < deadline, f"no checklist; status: {text_of(driver, '#check-status')!r}"
        driver.find_element(By.CSS_SELECTOR, "#check").click()
        try:
            wait_for(driver, lambda d: text_of(d, "#check-status").strip(), timeout=90, what="the checklist")
        except Exception:
            continue
        if "you uploaded 0" in text_of(driver, "#check-status"):
            time.sleep(1)
    status = text_of(driver, "#check-status")
    assert "2 of 2 photos usable" in status, status
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#upload-gallery img")) >= 2, what="thumbnails")
    driver.save_screenshot(str(tmp_path / "1-checked.png"))

    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Generate" in b.text)
    tab.click()
    retouch = wait_for(driver, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#retouch") if b.is_displayed()])
    retouch[0].click()
    wait_for(driver, lambda d: "retouched" in text_of(d, "#retouch-status"), timeout=180, what="the retouch")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#retouch-gallery img")) >= 2, what="results")
    driver.execute_script("document.querySelector('#retouch-gallery').scrollIntoView()")
    time.sleep(1)
    shot = tmp_path / "2-retouched.png"
    driver.save_screenshot(str(shot))
    assert "2 photo(s) retouched" in text_of(driver, "#retouch-status")
    captions = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#retouch-gallery"))
    assert "ΔITA" in captions or driver.find_elements(By.CSS_SELECTOR, "#retouch-gallery img")
    with Image.open(shot) as image:
        assert image.size[0] >= 1000 and image.getextrema() != ((0, 0), (0, 0), (0, 0))

    # The audit card: plain words first; two photos are too few to tell, and the card says so.
    tab = next(b for b in driver.find_elements(By.CSS_SELECTOR, "button[role=tab]") if "Audit" in b.text)
    tab.click()
    audit = wait_for(driver, lambda d: [b for b in d.find_elements(By.CSS_SELECTOR, "#audit") if b.is_displayed()])
    audit[0].click()
    wait_for(driver, lambda d: "Audit card" in text_of(d, "#audit-card"), timeout=240, what="the audit card")
    card = text_of(driver, "#audit-card")
    assert "Not enough photos to tell" in card, card
    assert card.index("Not enough photos to tell") < card.index("Flags:")
    help_toggle = next(
        e for e in driver.find_elements(By.CSS_SELECTOR, "button, span") if e.text == "How to read the audit"
    )
    help_toggle.click()
    wait_for(driver, lambda d: "not enough to tell" in text_of(d, "#audit-help"), what="the audit help")
    driver.execute_script("document.querySelector('#audit-card').scrollIntoView()")
    time.sleep(1)
    driver.save_screenshot(str(tmp_path / "3-audit.png"))
    if os.environ.get("HEADSHOT_LAB_SCREENSHOTS"):  # keep them for a person to look at
        target = Path(os.environ["HEADSHOT_LAB_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for path in tmp_path.glob("*.png"):
            (target / path.name).write_bytes(path.read_bytes())

"""The app in a real browser: headless Debian Chromium driven by Selenium, with real photos.

``test_first_visit_single_photo_and_delete`` (default run) reads the page as a first-time visitor does:
the capture guidance and its drawn examples, Learn identity and Generate off with a plain reason when no
model is configured, one real photo checked (a single thumbnail, not one huge tile), the next-step line,
and Delete asking for confirmation before it clears every status line.

``test_whole_flow_with_real_photos`` (``slow``) walks the rest: a good set, the studio retouch, select
in rank order with click-to-pick, export with its per-file notes (the circle as PNG), the audit (plots
without an inner scroll box, plain titles, the full report's images shown), re-uploading a photo, a
mixed set, "retrain" (off without a model) and delete with confirmation.

Each step saves a full-page screenshot into the test's tmp_path (copied to ``$HEADSHOT_LAB_SCREENSHOTS``
when set, for a person to look at). Gradio renders file names split into stem/extension elements, so the
tests wait on results (status text, gallery images), never on file-name text.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH = 1400
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    f"--window-size={WIDTH},1800",
)
#: Words a visitor must not meet outside the "For the operator" section.
OPERATOR_WORDS = ("HEADSHOT_LAB_", "tiny-model", "8-bit Adam", "IPTC", "ArcFace", "--no-resume", "python -m")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/install_system_deps.sh)"),
]


@pytest.fixture(scope="module")
def url(app_server):
    return app_server[0]


@contextlib.contextmanager
def chromium_driver(profile: Path) -> Iterator[Any]:
    """Headless Chromium (the Debian package) driven by its chromedriver, with its own profile folder; quit after.

    Skips the test when Chromium or selenium is missing."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (scripts/install_system_deps.sh)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture()
def driver(tmp_path):
    with chromium_driver(tmp_path / "chromium-profile") as browser:
        yield browser


@pytest.fixture()
def shots(tmp_path):
    """The screenshot folder; copied to ``$HEADSHOT_LAB_SCREENSHOTS`` afterwards when that is set."""
    folder = tmp_path / "screens"
    folder.mkdir()
    yield folder
    if os.environ.get("HEADSHOT_LAB_SCREENSHOTS"):
        target = Path(os.environ["HEADSHOT_LAB_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        for path in folder.glob("*.png"):
            (target / path.name).write_bytes(path.read_bytes())


def wait_for(browser, condition, timeout: float = 120.0, what: str = "") -> object:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.5).until(condition, message=f"timed out waiting for {what}")


def text_of(browser, selector: str) -> str:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        elements = browser.find_elements(By.CSS_SELECTOR, selector)
        return elements[0].text if elements else ""
    except StaleElementReferenceException:  # re-rendered meanwhile: read it on the next poll
        return ""


def visible(browser, selector: str) -> list:
    """The displayed elements matching ``selector`` (one Gradio re-renders meanwhile counts as not shown)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    shown = []
    for element in browser.find_elements(By.CSS_SELECTOR, selector):
        try:
            if element.is_displayed():
                shown.append(element)
        except StaleElementReferenceException:
            continue
    return shown


def shot(browser, folder: Path, name: str, anchor: str | None = None) -> Path:
    """A screenshot of the whole page (the window grown to the page's height), scrolled to ``anchor``."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(WIDTH, min(max(int(height) + 120, 900), 7000))
    if anchor:
        browser.execute_script(f"document.querySelector('{anchor}')?.scrollIntoView()")
    time.sleep(0.5)
    path = folder / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(WIDTH, 1800)
    return path


def open_tab(browser, label: str) -> None:
    from selenium.webdriver.common.by import By

    tab = next(b for b in browser.find_elements(By.CSS_SELECTOR, "button[role=tab]") if label in b.text)
    tab.click()
    time.sleep(0.3)


def click(browser, selector: str, what: str = "") -> None:
    """Click the first displayed ``selector``, again if Gradio re-rendered it in between."""
    from selenium.common.exceptions import StaleElementReferenceException

    for _ in range(5):
        try:
            wait_for(browser, lambda d: visible(d, selector), 30, what or selector)[0].click()
            return
        except StaleElementReferenceException:
            time.sleep(0.5)
    raise AssertionError(f"could not click {what or selector}")


def give_consent(browser) -> None:
    from selenium.webdriver.common.by import By

    consent = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#consent input[type=checkbox]"))[0]
    assert not browser.find_elements(By.CSS_SELECTOR, "#photos input[type=file]"), "no upload before consent"
    consent.click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#photos input[type=file]"), what="the uploader")


def set_photos(browser, paths: list[Path]) -> None:
    """Empty the uploader (its Clear button) and upload ``paths``."""
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.CSS_SELECTOR, "#photos button"):
        if "clear" in f"{button.get_attribute('aria-label')} {button.get_attribute('title')}".lower():
            button.click()
            wait_for(
                browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "#photos tbody tr"), 30, "an empty uploader"
            )
            break
    file_input = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#photos input[type=file]"))[0]
    file_input.send_keys("\n".join(str(p) for p in paths))
    wait_for(
        browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#photos tbody tr")) == len(paths), 60, "the uploads"
    )


def check(browser, count: int) -> str:
    """Press "Check photos" until the checklist reports on ``count`` photos (an upload may still be finishing)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + 180
    while f"of {count} photos usable" not in text_of(browser, "#check-status"):
        assert time.monotonic() < deadline, f"no checklist; status: {text_of(browser, '#check-status')!r}"
        browser.find_element(By.CSS_SELECTOR, "#check").click()
        try:
            wait_for(browser, lambda d: "photos usable" in text_of(d, "#check-status"), 90, "the checklist")
        except Exception:
            continue
        time.sleep(0.5)
    wait_for(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#upload-gallery img")) >= count, 60, "thumbnails")
    return text_of(browser, "#check-status")


def visitor_text(browser) -> str:
    """Everything a visitor reads: the page's text without the "For the operator" section."""
    return browser.execute_script(
        "const page = document.querySelector('.gradio-container').cloneNode(true);"
        "page.querySelector('#operator')?.remove(); return page.innerText;"
    )


def captions_fit(browser, selector: str) -> bool:
    """Every caption of a gallery shows its whole text (no ellipsis, nothing cut off)."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' .caption-label')]"
        ".every(c => c.scrollWidth <= c.clientWidth + 1 && c.scrollHeight <= c.clientHeight + 1);",
        selector,
    )


def no_inner_scroll(browser, selector: str) -> bool:
    return browser.execute_script(
        "const g = document.querySelector(arguments[0] + ' .grid-wrap');"
        "return !!g && g.scrollHeight <= g.clientHeight + 2;",
        selector,
    )


def delete_with_confirmation(browser, folder: Path, name: str) -> None:
    """Delete asks first; the second button deletes and every status line is emptied."""
    click(browser, "#delete", "the delete button")
    wait_for(browser, lambda d: visible(d, "#delete-confirm"), 30, "the confirmation")
    assert "cannot be undone" in text_of(browser, "#delete-question")
    assert "Deleted" not in text_of(browser, "#delete-status"), "nothing is deleted on the first click"
    shot(browser, folder, f"{name}-confirm", "#delete")
    click(browser, "#delete-confirm", "the confirmation")
    wait_for(browser, lambda d: "Deleted" in text_of(d, "#delete-status"), 60, "the deletion")
    wait_for(browser, lambda d: not visible(d, "#delete-confirm"), 30, "the confirmation to close")
    for status in ("#check-status", "#retouch-status", "#select-status", "#export-status", "#audit-card"):
        wait_for(browser, lambda d, s=status: not text_of(d, s).strip(), 30, f"{status} to be cleared")
    shot(browser, folder, f"{name}-deleted", "#delete")


def test_first_visit_single_photo_and_delete(url, driver, real_photos, shots):
    from selenium.webdriver.common.by import By

    driver.get(url)
    wait_for(driver, lambda d: "What photos to upload" in text_of(d, "#capture-guidance"), 60, "the guidance")
    guidance = text_of(driver, "#capture-guidance")
    assert "15–20 recent photos" in guidance and "sunglasses" in guidance and "filters" in guidance.lower()
    examples = wait_for(
        driver,
        lambda d: [
            i for i in d.find_elements(By.CSS_SELECTOR, "#capture-examples img") if i.get_property("naturalWidth")
        ],
        60,
        "the example drawings",
    )
    assert len(examples) == 7 and captions_fit(driver, "#capture-examples")
    shot(driver, shots, "01-first-visit")

    give_consent(driver)
    set_photos(driver, [real_photos["obama"]])
    status = check(driver, 1)
    assert "Next:" in status, status
    gallery = driver.find_element(By.CSS_SELECTOR, "#upload-gallery").rect["width"]
    tile = driver.find_element(By.CSS_SELECTOR, "#upload-gallery .thumbnail-item").rect["width"]
    assert tile < 0.4 * gallery, (tile, gallery)  # one photo is one small tile, not the whole width
    assert captions_fit(driver, "#upload-gallery")
    shot(driver, shots, "02-single-photo-checked", "#check-status")

    for tab, button, reason in (("Learn identity", "#train", "#train-off"), ("Generate", "#generate", "#generate-off")):
        open_tab(driver, tab)
        wait_for(driver, lambda d, r=reason: visible(d, r), 30, f"the reason {tab} is off")
        assert driver.find_element(By.CSS_SELECTOR, button).get_attribute("disabled") is not None, f"{button} is on"
        assert "studio retouch" in text_of(driver, reason).lower()
        shot(driver, shots, f"03-{button[1:]}-off")
    page = visitor_text(driver)
    assert not [word for word in OPERATOR_WORDS if word in page], [w for w in OPERATOR_WORDS if w in page]
    assert not visible(driver, "#operator-setup")  # collapsed; opened, it names the setting
    driver.find_elements(By.CSS_SELECTOR, "#operator button, #operator .label-wrap")[0].click()
    wait_for(driver, lambda d: "HEADSHOT_LAB_BASE_MODEL" in text_of(d, "#operator-setup"), 30, "the operator details")
    shot(driver, shots, "03-operator-details", "#operator")
    driver.find_elements(By.CSS_SELECTOR, "#operator button, #operator .label-wrap")[0].click()

    open_tab(driver, "Upload")
    delete_with_confirmation(driver, shots, "04-delete")


@pytest.mark.slow
def test_whole_flow_with_real_photos(url, driver, real_photos, shots):
    from PIL import Image
    from selenium.webdriver.common.by import By

    driver.get(url)
    give_consent(driver)

    # A good set: three photos of one person.
    good = [real_photos[name] for name in ("obama", "obama2", "obama3")]
    set_photos(driver, good)
    status = check(driver, 3)
    assert "Next:" in status and "Something went wrong" not in status, status
    assert captions_fit(driver, "#upload-gallery") and no_inner_scroll(driver, "#upload-gallery")
    shot(driver, shots, "10-good-set-checked", "#check-status")

    # The studio retouch (no model configured in tests).
    open_tab(driver, "Generate")
    click(driver, "#retouch", "the retouch button")
    wait_for(driver, lambda d: "retouched" in text_of(d, "#retouch-status"), 240, "the retouch")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#retouch-gallery img")) >= 1, 60, "results")
    retouch_status = text_of(driver, "#retouch-status")
    assert "Next:" in retouch_status and "IPTC" not in retouch_status, retouch_status
    assert captions_fit(driver, "#retouch-gallery")
    shot(driver, shots, "11-retouched", "#retouch-status")
    driver.find_elements(By.CSS_SELECTOR, "#operator button, #operator .label-wrap")[0].click()  # the details
    wait_for(driver, lambda d: "IPTC" in text_of(d, "#operator-log"), 30, "the retouch's details for the operator")
    shot(driver, shots, "11-retouch-operator-details", "#operator")
    driver.find_elements(By.CSS_SELECTOR, "#operator button, #operator .label-wrap")[0].click()

    # Select: best first, click a headshot to drop it from the picks and again to pick it back.
    open_tab(driver, "Select")
    click(driver, "#select", "the select button")
    wait_for(driver, lambda d: "headshots kept" in text_of(d, "#select-status"), 180, "the selection")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#candidates .thumbnail-item"), 60, "candidates")
    captions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#candidates .caption-label")]
    ranks = [int(c.split("#")[1].split()[0]) for c in captions if "#" in c]
    assert ranks == sorted(ranks) and ranks[:1] == [1], captions  # rank order, best first
    assert captions_fit(driver, "#candidates")

    def picked(d) -> int:
        return len(d.find_elements(By.CSS_SELECTOR, "#picks input[type=checkbox]:checked"))

    before = picked(driver)
    driver.find_elements(By.CSS_SELECTOR, "#candidates .thumbnail-item")[0].click()
    wait_for(driver, lambda d: picked(d) == before - 1, 30, "the click to drop a pick")
    driver.find_elements(By.CSS_SELECTOR, "#candidates .thumbnail-item")[0].click()
    wait_for(driver, lambda d: picked(d) == before, 30, "the click to pick it again")
    wait_for(driver, lambda d: "picked" in text_of(d, "#candidates .caption-label"), 30, "the picked caption")
    shot(driver, shots, "12-selected", "#select-status")

    # Export: JPEG asked, the circle is written as a transparent PNG and says so next to the file.
    click(driver, "#export", "the export button")
    wait_for(driver, lambda d: "files written" in text_of(d, "#export-status"), 180, "the export")
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#export-gallery .caption-label"), 60, "the files")
    notes = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#export-gallery .caption-label"))
    assert "circle.png" in notes and "saved as PNG: round" in notes, notes
    assert "notes" in text_of(driver, "#export-status") and captions_fit(driver, "#export-gallery")
    shot(driver, shots, "13-exported", "#export-status")

    # The audit: plain titles, plots without an inner scroll box, the full report's images shown.
    open_tab(driver, "Audit")
    click(driver, "#audit", "the audit button")
    wait_for(driver, lambda d: "Audit card" in text_of(d, "#audit-card"), 300, "the audit card")
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#audit-plots img")) >= 2, 60, "the plots")
    time.sleep(1)
    plot_captions = " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "#audit-plots .caption-label"))
    assert "Skin tone change" in plot_captions and "skin_delta_ita" not in plot_captions, plot_captions
    assert no_inner_scroll(driver, "#audit-plots")
    for summary in driver.find_elements(By.CSS_SELECTOR, "#audit-card summary"):
        summary.click()
    images = driver.find_elements(By.CSS_SELECTOR, "#audit-card img")
    assert images and all(i.get_property("naturalWidth") > 100 for i in images), "broken report images"
    shot(driver, shots, "14-audit", "#audit-card")

    # Re-upload one of the same photos (a new copy in Gradio's cache) and check again.
    open_tab(driver, "Upload")
    set_photos(driver, [real_photos["obama"]])
    wait_for(driver, lambda d: "photos changed" in text_of(d, "#check-status").lower(), 30, "the stale checklist note")
    status = check(driver, 1)
    assert "Something went wrong" not in status, status
    shot(driver, shots, "15-re-uploaded", "#check-status")

    # A mixed set: two people.
    set_photos(driver, [real_photos["obama"], real_photos["biden"], real_photos["obama2"]])
    status = check(driver, 3)
    assert "Something went wrong" not in status and "Next:" in status, status
    flagged = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#upload-gallery .caption-label") if "⚠" in e.text]
    assert flagged and captions_fit(driver, "#upload-gallery"), flagged  # the other person's photo says why
    shot(driver, shots, "16-mixed-set", "#check-status")

    # "Retrain" after changing photos: without a model, Learn identity stays off and says why.
    open_tab(driver, "Learn identity")
    assert driver.find_element(By.CSS_SELECTOR, "#train").get_attribute("disabled") is not None
    assert "studio retouch" in text_of(driver, "#train-off").lower()
    shot(driver, shots, "17-retrain-off")

    open_tab(driver, "Upload")
    delete_with_confirmation(driver, shots, "18-delete")
    with Image.open(shots / "18-delete-deleted.png") as image:
        assert image.size[0] >= 1000 and image.getextrema() != ((0, 0), (0, 0), (0, 0))

"""The app on emulated ZeroGPU in headless Chromium, with real photos and tiny models: "Learn identity" offers the
quick mode first and refuses training in plain words, the quick preview shows its headshots, and no request goes
above ZeroGPU's limit nor loads weights inside a GPU call. Screenshots go to the test's tmp_path (and to
``$HEADSHOT_LAB_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import time

import pytest
from PIL import Image
from test_browser import (  # the browser helpers and fixtures of the main browser test
    CHROMIUM,
    OPERATOR_WORDS,
    check,
    click,
    driver,  # noqa: F401
    give_consent,
    open_tab,
    set_photos,
    shot,
    shots,  # noqa: F401
    text_of,
    visible,
    visitor_text,
    wait_for,
)
from test_zerogpu import zerogpu  # noqa: F401  # app.py imported on emulated ZeroGPU, tiny models

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (scripts/install_system_deps.sh)"),
]


@pytest.fixture(scope="module")
def zerogpu_url(zerogpu):  # noqa: F811
    from headshot_lab.testing.client import free_loopback_port

    app, fake = zerogpu
    _, url, _ = app.launch(
        app.demo, prevent_thread_lock=True, server_name="127.0.0.1", server_port=free_loopback_port(), quiet=True,
        ssr_mode=False,
    )  # fmt: skip
    try:
        yield url, fake
    finally:
        app.demo.close()


def test_zerogpu_learn_identity_and_quick_preview(zerogpu_url, driver, real_photos, shots, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    url, fake = zerogpu_url
    photos = []
    for name in ("obama", "obama2"):
        image = Image.open(real_photos[name]).convert("RGB")
        image.thumbnail((800, 800))
        image.save(tmp_path / f"{name}.jpg", quality=92)
        photos.append(tmp_path / f"{name}.jpg")
    driver.get(url)
    give_consent(driver)
    set_photos(driver, photos)
    check(driver, 2)

    open_tab(driver, "Learn identity")
    radios = {r.get_attribute("value"): r for r in driver.find_elements(By.CSS_SELECTOR, "input[type=radio]")}
    assert radios["faceid"].is_selected(), "the quick mode is the default on ZeroGPU"
    shot(driver, shots, "zerogpu-1-learn-identity")
    radios["lora"].click()
    click(driver, "#train", "Learn identity")
    wait_for(driver, lambda d: "not offered here" in text_of(d, "#train-status"), 120, "the training refusal")
    refusal = text_of(driver, "#train-status")
    assert "Quick, no training" in refusal and not any(word in refusal for word in OPERATOR_WORDS)
    shot(driver, shots, "zerogpu-2-training-refused", "#train-status")
    radios["faceid"].click()
    click(driver, "#train", "Learn identity")
    wait_for(driver, lambda d: "likeness is ready" in text_of(d, "#train-status"), 120, "the FaceID likeness")

    open_tab(driver, "Generate")
    click(driver, "#preview", "Quick preview")
    wait_for(driver, lambda d: len(visible(d, "#preview-gallery img")) >= 2, 180, "the preview headshots")
    time.sleep(1)
    status = text_of(driver, "#preview-status")
    assert "quick previews" in status and "without training" in status, status
    shot(driver, shots, "zerogpu-3-quick-preview", "#preview-box")
    click(driver, "#generate", "Generate headshots")
    wait_for(driver, lambda d: len(visible(d, "#generated img")) >= 1, 180, "the generated headshots")
    time.sleep(1)
    shot(driver, shots, "zerogpu-4-generated", "#generate-status")
    assert not any(word in visitor_text(driver) for word in ("HEADSHOT_LAB_", "LCMScheduler", "nsfw"))
    assert len([c for c in fake.calls if c.ran]) >= 2
    fake.assert_rules()

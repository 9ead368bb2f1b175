"""The background warm-up: it loads the process-wide face models once, and a failure never escapes it."""

from __future__ import annotations

import logging

from headshot_lab.errors import ModelUnavailableError
from headshot_lab.ui import warmup


def test_warm_up_loads_the_shared_models_the_actions_use():
    from headshot_lab.faces import mesh

    thread = warmup.start_warm_up()
    thread.join(timeout=300)
    assert not thread.is_alive()
    timings = warmup.warm_up()  # a second run finds everything loaded
    assert set(timings) == set(warmup.WARM_UP_STEPS)
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in timings.values()), timings
    kinds = {key[0] for key in mesh._MODELS}
    assert {"face_mesh", "selfie_segmentation"} <= kinds


def test_a_failing_step_is_logged_and_the_others_still_run(monkeypatch, caplog):
    ran: list[str] = []

    def missing() -> None:
        raise ModelUnavailableError("The face models are not installed.", fix="pip install them")

    monkeypatch.setattr(warmup, "WARM_UP_STEPS", {"broken": missing, "fine": lambda: ran.append("fine")}, raising=True)
    with caplog.at_level(logging.WARNING, logger=warmup.__name__):
        timings = warmup.warm_up()
    assert ran == ["fine"]
    assert str(timings["broken"]).startswith("error: The face models are not installed.")
    assert isinstance(timings["fine"], float)
    assert "warm-up step broken failed" in caplog.text

"""A human two-alternative forced-choice (2AFC) kit: "which of these two photos is AI-made?"

:func:`make_survey` writes a self-contained folder for participants:

* ``survey.html`` — one trial per row: a real photo and a generated one side by side, the side
  drawn at random per trial (seeded); the participant picks one per trial and downloads
  ``answers.csv`` (``trial,choice``) with a button (no server, nothing sent anywhere);
* ``images/`` — every image re-encoded as PNG under a random name, so neither file names nor
  metadata (EXIF, XMP AI-disclosure labels, C2PA) give the answer away;
* ``key.csv`` — ``trial,left,right,ai_side`` (the answer key: keep it away from participants).

:func:`score_survey` joins answers to the key. With ``k`` correct of ``n`` answers, the accuracy
``k / n`` gets an exact binomial test against chance (``p = 0.5``) and the confidence interval of
:meth:`scipy.stats.binomtest(...).proportion_ci` (Wilson score by default; ``"exact"`` =
Clopper–Pearson). 0.5 = people cannot tell; the CI above 0.5 = people can. Answers of one
participant are not independent of each other; with several participants, report per-participant
accuracy too (:attr:`SurveyScore.by_participant`).
"""

from __future__ import annotations

import csv
import html
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.atomic import atomic_write, write_text_atomic
from headshot_lab.errors import HeadshotLabError

SIDES = ("left", "right")


@dataclass(frozen=True)
class SurveyKit:
    """Paths of a written survey and its size."""

    folder: Path
    html: Path
    key: Path
    n_trials: int


@dataclass(frozen=True)
class SurveyScore:
    """The result of a 2AFC survey.

    Attributes:
        n: answered trials.
        correct: trials where the generated photo was picked.
        accuracy: ``correct / n``.
        ci: binomial confidence interval of the accuracy.
        p_value: two-sided exact binomial test against 0.5.
        method: the CI method (``"wilson"`` or ``"exact"``).
        unanswered: trials in the key without a valid answer.
        by_participant: ``{participant: accuracy}`` when the answers name participants.
    """

    n: int
    correct: int
    accuracy: float
    ci: tuple[float, float]
    p_value: float
    method: str
    unanswered: int = 0
    by_participant: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "correct": self.correct,
            "accuracy": round(self.accuracy, 5),
            "ci": [round(self.ci[0], 5), round(self.ci[1], 5)],
            "p_value": float(f"{self.p_value:.6g}"),
            "method": self.method,
            "unanswered": self.unanswered,
            "by_participant": {k: round(v, 5) for k, v in self.by_participant.items()},
        }


def _write_image(image: Any, folder: Path) -> str:
    from headshot_lab.io import as_rgb_array, load_rgb, save_image

    pixels = load_rgb(image, min_side=0) if isinstance(image, str | Path) else as_rgb_array(image)
    name = f"{secrets.token_hex(8)}.png"
    save_image(pixels, folder / name)
    return name


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
.trial{{border-top:1px solid #ccc;padding:1em 0}} .pair{{display:flex;gap:1em}}
.pair label{{flex:1;text-align:center;cursor:pointer}} .pair img{{max-width:100%;max-height:420px}}
</style></head><body>
<h1>{title}</h1>
<p>Each row shows two photos. Exactly one of them was made or changed by an AI system.
Pick the one you think it is, for every row, then press <b>Download answers</b> and send the file back.</p>
<form id="survey">
{trials}
</form>
<p><button type="button" onclick="download()">Download answers</button> <span id="status"></span></p>
<script>
function download() {{
  const rows = ["trial,choice"]; let missing = 0;
  document.querySelectorAll(".trial").forEach(t => {{
    const c = t.querySelector("input:checked"); if (!c) missing++;
    rows.push(t.dataset.trial + "," + (c ? c.value : ""));
  }});
  const blob = new Blob([rows.join("\\n") + "\\n"], {{type: "text/csv"}});
  const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = "answers.csv"; a.click();
  document.getElementById("status").textContent = missing ? missing + " rows left unanswered." : "Thank you!";
}}
</script>
</body></html>
"""

_TRIAL = """<div class="trial" data-trial="{trial}"><p>Photo pair {number}</p><div class="pair">
<label><img src="images/{left}" alt="left photo"><br><input type="radio" name="t{trial}" value="left"> left</label>
<label><img src="images/{right}" alt="right photo"><br><input type="radio" name="t{trial}" value="right"> right</label>
</div></div>"""


def make_survey(
    real: Sequence[Any],
    generated: Sequence[Any],
    folder: str | Path,
    *,
    seed: int = 0,
    n_trials: int | None = None,
    paired: bool = False,
    title: str = "Which photo is AI-made?",
) -> SurveyKit:
    """Write a randomised 2AFC survey (see the module docstring).

    Args:
        real: real photos (paths, arrays, PIL images).
        generated: generated photos.
        folder: output folder (created).
        seed: seeds the pairing, trial order and left/right sides.
        n_trials: number of trials (default ``min(len(real), len(generated))``).
        paired: pair ``real[i]`` with ``generated[i]`` (e.g. a selfie and its headshot) instead of at random.
        title: page title.
    """
    if not real or not generated:
        raise HeadshotLabError("A 2AFC survey needs at least one real and one generated photo.", code="survey_empty")
    count = min(len(real), len(generated))
    n = count if n_trials is None else int(n_trials)
    if not 1 <= n <= count:
        raise HeadshotLabError(f"n_trials must be between 1 and {count}, got {n_trials}.", code="bad_option")
    rng = np.random.default_rng(seed)
    if paired:
        chosen = rng.permutation(count)[:n]
        pairs = [(int(i), int(i)) for i in chosen]
    else:
        pairs = list(
            zip(rng.permutation(len(real))[:n].tolist(), rng.permutation(len(generated))[:n].tolist(), strict=True)
        )
    ai_sides = rng.integers(0, 2, size=n)
    out = Path(folder)
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    key_rows, blocks = [], []
    for trial, ((ri, gi), side) in enumerate(zip(pairs, ai_sides, strict=True), start=1):
        real_name = _write_image(real[ri], images)
        fake_name = _write_image(generated[gi], images)
        left, right = (fake_name, real_name) if side == 0 else (real_name, fake_name)
        key_rows.append({"trial": trial, "left": left, "right": right, "ai_side": SIDES[int(side)]})
        blocks.append(_TRIAL.format(trial=trial, number=trial, left=left, right=right))
    page = out / "survey.html"
    write_text_atomic(page, _PAGE.format(title=html.escape(title), trials="\n".join(blocks)))
    key = out / "key.csv"
    with atomic_write(key, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["trial", "left", "right", "ai_side"])
        writer.writeheader()
        writer.writerows(key_rows)
    return SurveyKit(folder=out, html=page, key=key, n_trials=n)


def _read_csv(path: str | Path, required: set[str]) -> list[dict[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise HeadshotLabError(f"{file}: file not found.", code="file_not_found")
    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        fields = {name.strip().lower() for name in reader.fieldnames or []}
        if not required <= fields:
            raise HeadshotLabError(
                f"{file.name}: expected the columns {sorted(required)}, found {sorted(fields)}.",
                code="bad_survey_file",
            )
        return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def score_survey(
    key: str | Path, answers: str | Path | Sequence[str | Path], *, confidence: float = 0.95, method: str = "wilson"
) -> SurveyScore:
    """Score ``answers.csv`` file(s) (``trial,choice[,participant]``) against ``key.csv``.

    Every answer row counts as one trial (several files = several participants; a file without a
    ``participant`` column is named after the file). Answers other than ``left``/``right`` are
    counted as unanswered.
    """
    from scipy.stats import binomtest

    truth = {row["trial"]: row["ai_side"] for row in _read_csv(key, {"trial", "ai_side"})}
    files = [answers] if isinstance(answers, str | Path) else list(answers)
    correct = total = unanswered = 0
    per_participant: dict[str, list[int]] = {}
    for file in files:
        for row in _read_csv(file, {"trial", "choice"}):
            trial, choice = row["trial"], row["choice"].lower()
            if trial not in truth:
                continue
            if choice not in SIDES:
                unanswered += 1
                continue
            hit = int(choice == truth[trial])
            correct += hit
            total += 1
            per_participant.setdefault(row.get("participant") or Path(file).stem, []).append(hit)
    if total == 0:
        raise HeadshotLabError("No answered trial matches the key.", code="survey_no_answers")
    result = binomtest(correct, total, p=0.5, alternative="two-sided")
    interval = result.proportion_ci(confidence_level=confidence, method=method)
    return SurveyScore(
        n=total,
        correct=correct,
        accuracy=correct / total,
        ci=(float(interval.low), float(interval.high)),
        p_value=float(result.pvalue),
        method=method,
        unanswered=unanswered,
        by_participant={p: float(np.mean(h)) for p, h in sorted(per_participant.items())}
        if len(per_participant) > 1
        else {},
    )

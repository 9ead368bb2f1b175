"""PNG plots of results.json (eval.plots)."""

from __future__ import annotations

from eval.plots import drift_axes, write_plots


def _run(spec, ita, axes=None, roc=True):
    entry = {"value": ita, "ci": [ita - 0.2, ita + 0.2], "n": 5}
    metric = {
        "overall": entry,
        "by_group": {"ITA group I": entry, "ITA group VI": entry},
        "difference": 0.0,
        "ratio": 1.0,
    }
    return {
        "generator": spec,
        "axes": axes or {},
        "metrics": {
            "skin_delta_ita": metric,
            "identity_cosine": metric,
            "texture_ratio": metric,
            "detectability_auroc": {"overall": {"value": 0.6, "ci": [0.5, 0.7], "n": 32, "n_real": 16, "n_fake": 16}},
        },
        "curves": {"roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.7, 1.0]}} if roc else {},
    }


def test_plots_are_written_for_groups_roc_and_drift(tmp_path):
    runs = [
        _run("null", 0.0),
        _run("lighten:1", 1.0, {"strength": 1.0}),
        _run("lighten:3", 3.0, {"strength": 3.0}),
        _run("studio", 0.1, {"style": "corporate"}, roc=False),
    ]
    names = write_plots({"runs": runs}, tmp_path)
    assert names == [
        "delta_ita_by_group.png",
        "identity_by_group.png",
        "texture_by_group.png",
        "detectability_roc.png",
        "drift_strength.png",
    ]
    for name in names:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = drift_axes(runs)
    assert list(axes) == ["strength"] and [v for v, _ in axes["strength"]["lighten"]] == [1.0, 3.0]


def test_nothing_to_plot_writes_nothing(tmp_path):
    assert write_plots({"runs": []}, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_no_roc_when_too_few_images_for_a_verdict(tmp_path):
    """With 3 real and 3 made images the card says "not enough to tell": no ROC curve pretends otherwise."""
    small = _run("null", 0.0)
    small["metrics"]["detectability_auroc"]["overall"].update(n=6, n_real=3, n_fake=3)
    assert "detectability_roc.png" not in write_plots({"runs": [small]}, tmp_path)
    assert "detectability_roc.png" in write_plots({"runs": [_run("null", 0.0)]}, tmp_path)

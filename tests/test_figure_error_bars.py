"""Error bars show the spread across seeds only where there is one: a single seed's missing std drew caps at the
mean, a spread of zero that was never measured."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer, ErrorbarContainer

from pipeline.aggregate import g2p, stacked, style
from pipeline.aggregate.style import plt


def _caps(fig) -> np.ndarray:
    """The y positions of every error-bar cap in the figure (NaN where none is drawn)."""
    ys = []
    for ax in fig.axes:
        for c in ax.containers:
            bars = c.errorbar if isinstance(c, BarContainer) else c
            if isinstance(bars, ErrorbarContainer):
                ys += [np.asarray(cap.get_ydata(), dtype=float) for cap in bars.lines[1]]
    return np.concatenate(ys)


def _captured(monkeypatch, module):
    figs = []
    monkeypatch.setattr(module, "save", lambda fig, path, **_: figs.append(fig))
    return figs


def _stacked(std: float) -> pd.DataFrame:
    t = pd.DataFrame({"variant": ["sae128", "sae256_64"], "n_labels": [55000] * 2, "n_labels_few": [550] * 2})
    for col in ["acc_frozen", "acc_finetuned", "acc_random"]:
        for prefix in ("", "few_"):
            t[prefix + col] = [0.9, 0.95]
            t[prefix + col + "_std"] = std
    return t


def _beams(std: float) -> pd.DataFrame:
    row = {"variant": "attention"}
    for k in (1, 3):
        for m in ("wer", "per"):
            row[f"test_{m}_beam{k}"], row[f"test_{m}_beam{k}_std"] = 0.27, std
    return pd.DataFrame([row])


@pytest.mark.parametrize("figure", ["errorbar", "stacked", "beams"])
def test_a_single_seed_gets_no_error_bar_and_several_seeds_do(figure, monkeypatch, tmp_path):
    def draw(std):
        if figure == "errorbar":
            fig, ax = plt.subplots()
            style.errorbar(ax, [1, 2], [0.5, 0.6], [std, std], fmt="o")
            return fig
        module = stacked if figure == "stacked" else g2p
        figs = _captured(monkeypatch, module)
        if figure == "stacked":
            stacked.figures({}, None, _stacked(std), tmp_path)
        else:
            g2p.beam_figure(_beams(std), tmp_path / "beams.svg")
        return figs[0]

    single, several = draw(float("nan")), draw(0.01)
    assert np.isnan(_caps(single)).all(), "caps drawn for a single seed"
    assert np.isfinite(_caps(several)).all() and len(_caps(several)) > 0
    plt.close("all")

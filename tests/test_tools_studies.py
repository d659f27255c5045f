"""The headless studies behind the notes' tables: notebook 06's rate-distortion table and the colour check."""

import pytest

from convae_utils.tools import colour_check, rate_distortion


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVAE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("CONVAE_DATASET", raising=False)
    return tmp_path / "runs"


def test_rate_distortion_study_scores_every_method(runs, capsys):
    assert rate_distortion.main(["--profile", "smoke", "--dataset", "shapes10", "--csv", str(runs / "rd.csv")]) == 0
    printed = capsys.readouterr().out
    for method in ("autoencoder (float32)", "autoencoder (8-bit)", "PCA (float32)", "JPEG (whole file)", "bicubic"):
        assert method in printed
    assert sorted(p.name for p in runs.iterdir() if p.is_dir()) == [
        "smoke-shapes10-latent1000", "smoke-shapes10-latent200", "smoke-shapes10-latent50"]


def test_colour_check_reports_every_series_model(runs):
    rows = colour_check.check("smoke", "shapes10")
    assert [r["model"] for r in rows] == list(colour_check.SERIES_MODELS)
    for row in rows:
        assert 0 <= row["chroma kept"] and row["mean colour error"] >= 0 and isinstance(row["passes"], bool)

"""The headless studies behind the notes' tables: notebook 06's rate-distortion table and the colour check."""

from pathlib import Path

import pytest

from tools.studies import colour_check, rate_distortion


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


# -- one plan per study, read by the notebook and by `python -m tools study NN` (issue 27) ----------------

def _parameters(notebook: str, profile: str, monkeypatch) -> dict:
    """The values notebook ``notebook``'s parameters cell sets under ``profile`` (that cell alone, executed)."""
    import jupytext

    from convae_utils import settings, studies

    monkeypatch.setenv("CONVAE_PROFILE", profile)
    cell = next(c for c in jupytext.read(Path(__file__).resolve().parents[1] / "notebooks" / notebook).cells if "parameters" in c.metadata.get("tags", []))
    namespace = {"settings": settings, "studies": studies}
    exec(cell.source, namespace)
    return namespace


@pytest.mark.parametrize("profile", ["workshop", "full", "smoke"])
def test_notebook_06_and_its_study_read_one_plan(profile, monkeypatch):
    from convae_utils import studies

    cell = _parameters("06_rate_distortion.py", profile, monkeypatch)
    assert cell["LATENT_SWEEP"] == studies.LATENT_SWEEPS[profile]
    assert (cell["QUANTIZE_BITS"], cell["JPEG_QUALITIES"], cell["THUMBNAIL_SIZES"]) == (
        rate_distortion.QUANTIZE_BITS, rate_distortion.JPEG_QUALITIES, rate_distortion.THUMBNAIL_SIZES)
    # a change made once reaches both: the study reads the plan when it runs, not a copy
    monkeypatch.setitem(studies.LATENT_SWEEPS, profile, (7,))
    assert _parameters("06_rate_distortion.py", profile, monkeypatch)["LATENT_SWEEP"] == (7,)


@pytest.mark.parametrize("profile", ["workshop", "full", "smoke"])
def test_notebook_08_and_its_study_read_one_plan(profile, monkeypatch):
    from convae_utils import studies
    from tools.studies import winning

    cell = _parameters("08_winning.py", profile, monkeypatch)
    assert cell["MORE_PATCHES"] == winning.BUDGETS[profile]
    assert cell["PCA_STEPS"] == winning.PCA_STEPS and cell["REFINE_STEPS"] == studies.REFINE_STEPS[profile]
    assert (cell["PCA_BEST_COMPONENTS"], cell["CODEC_STEP_FACTORS"], cell["CODEC_FIT_IMAGES"]) == (
        studies.PCA_BEST_COMPONENTS, studies.CODEC_STEP_FACTORS, studies.CODEC_FIT_IMAGES)
    assert 16 * cell["CODE_CHANNELS"] == winning.CODE_VALUES
    assert cell["WIDTH"] == studies.SPATIAL_WIDTHS[profile] and cell["PCA_FIT_IMAGES"] == studies.PCA_FIT_IMAGES
    if profile == "workshop":  # the budgets the README quotes
        assert cell["MORE_PATCHES"]["train_size"] == 96_000 and cell["PCA_INIT_PATCHES"]["train_size"] == 24_000


def test_one_study_command_runs_every_study_and_refuses_an_unknown_one(capsys):
    from tools import cli
    from tools.studies import STUDIES

    assert {"06", "08", "09"} <= set(STUDIES)
    with pytest.raises(SystemExit) as info:
        cli.main(["study", "07"])
    assert info.value.code == 2 and "invalid choice: '07'" in capsys.readouterr().err
    for name in STUDIES:  # each study's own options, under the one command's name
        with pytest.raises(SystemExit) as info:
            cli.main(["study", name, "--help"])
        assert info.value.code == 0
        assert f"usage: python -m tools study {name}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, prefix", [
    (["study", "10", "--seed", "3"], "--seed"),        # study 10 counts seeds (--seeds); a prefix is not --seeds
    (["study", "08", "--seed", "3"], "--seed"),
    (["study", "10", "--lambda", "0.1"], "--lambda"),  # not --lambdas
    (["study", "codec-variants", "--train", "10"], "--train"),
])
def test_a_prefix_of_a_studys_option_is_refused_not_read_as_the_option(argv, prefix, capsys):
    from tools import cli

    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert f"unrecognized arguments: {prefix}" in err
    assert len(err.splitlines()) == 1, err  # one line, as bench, kit, sync and train say it
    assert err.endswith(f"(see python -m tools study {argv[1]} --help)"), err  # the study's own options


def test_every_studys_profile_option_lists_its_choices(capsys):
    """``--profile`` takes the same names in every study that has one, and its --help lists them."""
    from convae_utils.settings import PROFILE_CHOICES
    from tools import cli
    from tools.studies import STUDIES

    listed = "{" + ",".join(PROFILE_CHOICES) + "}"
    for name in STUDIES:
        with pytest.raises(SystemExit):
            cli.main(["study", name, "--help"])
        out = capsys.readouterr().out
        if "--profile" in out:
            assert f"--profile {listed}" in out, f"study {name}: {out}"


@pytest.mark.parametrize("argv, said", [
    (["--train-size", "0"], "argument --train-size: expected a number from 1 to 1,000,000, got 0"),
    (["--train-size", "5000000"], "argument --train-size: expected a number from 1 to 1,000,000, got 5000000"),
    (["--seed", "-1"], "argument --seed: expected a number from 0 to"),
])
def test_codec_variants_names_the_option_a_bad_value_came_in(argv, said, capsys):
    from tools.studies import codec_variants

    with pytest.raises(SystemExit) as info:
        codec_variants.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "train_size" not in err  # the option, never the settings field

"""What notebooks 04, 05 and 09 teach, held to what their cells compute (issue 29)."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _cells(name: str, kind: str) -> list[str]:
    return [c.source for c in jupytext.read(NOTEBOOKS / name).cells if c.cell_type == kind]


def test_09_names_the_scheme_that_pays_the_kl_for_a_drawn_code():
    text = " ".join(" ".join(_cells("09_vae.py", "markdown")).split())
    assert "relative-entropy coding" in text and "Havasi" in text and "Theis and Yosri" in text
    assert "KL + log2(KL + 1)" in text and "lower bound" in text
    assert "bits-back or relative-entropy" not in text          # bits-back is lossless (Townsend et al.)
    assert "*lossless*" in text and "notebook 10" in text


def test_09_plots_the_drawn_codes_distortion_against_pca_entropy_coded():
    code = "\n".join(_cells("09_vae.py", "code"))
    assert "winning.pca_codec_curve(" in code and "generation.vae_against_opponents(" in code
    assert "rate_distortion_plot(table" in code and "autoencoder (8-bit)" not in code
    assert "compare_at_equal_bits(" in code                      # the gap at equal bits, from the run


def test_09_trains_the_sweep_with_the_learners_functions_into_runs_of_their_own():
    code = "\n".join(_cells("09_vae.py", "code"))
    assert "reparameterize_fn=reparameterize, kl_fn=kl_divergence" in code
    assert "plan.run_name(beta, tag)" in code and "vae.learner_tag(reparameterize, kl_divergence)" in code


def test_09_counts_its_betas_and_says_smoke_numbers_test_the_code():
    from convae_utils import vae

    words = {6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten"}
    header = jupytext.read(NOTEBOOKS / "09_vae.py").cells[0].source
    assert f"{words[len(vae.SWEEPS['full']['betas'])]} betas" in header
    assert "2.4 more minutes" not in header
    code = "\n".join(_cells("09_vae.py", "code"))
    assert "These numbers test the code, not the models." in code


def test_09_writes_no_inline_tex_that_the_offline_page_would_show_raw():
    for source in _cells("09_vae.py", "markdown"):
        outside_display = re.sub(r"\$\$.+?\$\$", "", source, flags=re.S)
        assert "$" not in outside_display, outside_display[:200]


def test_05_draws_random_codes_from_a_density_fitted_on_training_codes():
    cell = next(c for c in _cells("05_beyond.py", "code") if "random_codes" in c)
    assert "metrics.encode(detector, bundle.train)" in cell and "fixed_codes.mean" not in cell


def test_04_quotes_no_number_its_cells_do_not_compute():
    text = " ".join(" ".join(_cells("04_bottleneck.py", "markdown")).split())
    for unsourced in ("0.8 dB in our workshop run", "lost 0.7 dB", "17.5 dB better"):
        assert unsourced not in text


def test_troubleshooting_covers_the_progress_bars_of_a_reopened_notebook():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    trouble = " ".join(readme[readme.index("## Troubleshooting"):].split())
    bullet = trouble[trouble.index("model not found"):][:600]
    assert "progress bar" in bullet and "re-run that cell" in bullet


def test_03_colour_verdict_is_computed_and_smoke_says_its_numbers_test_the_code():
    cell = next(c for c in _cells("03_training.py", "code") if "colour.colour_report(" in c)
    assert 'config.profile == "smoke"' in cell and "test the code" in cell and 'colour_check["passes"]' in cell
    text = " ".join(" ".join(_cells("03_training.py", "markdown")).split())
    assert "Why colour is learnt here" not in text   # a claim the smoke run's "FAILS the colour check" contradicted


def test_09_maths_reads_in_the_offline_page():
    from convae_utils.series import math_as_mathml

    for source in _cells("09_vae.py", "markdown"):
        page = math_as_mathml(source)            # what the exported HTML gets: display maths as MathML
        assert "$" not in page, page[:200]       # and no inline TeX left to show raw

"""The whole-experiment timer (the GPU target's measurement), in a tiny CPU run."""

import json

import torch

from tools.studies import experiment


def test_the_experiment_trains_every_model_end_to_end(tmp_path, capsys):
    result = experiment.run_experiment(torch.device("cpu"), epochs=1, train_pool=200, latent_dims=(8, 16),
                                       log=lambda _: None)
    assert list(result["models"]) == ["latent 8", "latent 16"]
    assert result["train_images"] + result["val_images"] == 200
    for model in result["models"].values():
        assert len(model["epoch_seconds"]) == 1 and model["seconds"] > 0 and model["test_psnr"] > 0
    assert abs(result["seconds"] - sum(m["seconds"] for m in result["models"].values())) < 0.05
    assert experiment.main(["--device", "cpu", "--epochs", "1", "--train-pool", "200",
                            "--json", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["epochs"] == 1
    assert "whole experiment on cpu" in capsys.readouterr().out

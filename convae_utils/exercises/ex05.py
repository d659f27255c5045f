"""Notebook 05's exercise (beyond rebuilding): count the code units that never fire."""

from __future__ import annotations

import numpy as np
import torch

from .core import CodeExercise, Wrong

NUMBERS = []


def count_dead_units(codes: torch.Tensor) -> int:
    """Code units (columns of ``codes``, (N, latent_dim)) that are zero for every image (row)."""
    return int((codes == 0).all(dim=0).sum())


def check_dead_units(candidate) -> None:
    """Run ``candidate`` on 4 codes of 6 units, two of them dead."""
    codes = torch.tensor([[0.0, 0.0, 1.5, 0.0, 0.2, 0.0],
                          [0.0, 0.0, 0.0, 0.3, 0.0, 0.0],
                          [0.0, 0.7, 0.4, 0.0, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])        # units 0 and 5 are dead; image 3 is all zeros
    got = candidate(codes.clone())
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if isinstance(got, torch.Tensor) and got.dtype == torch.bool:
        raise Wrong(f"you returned a mask of shape {tuple(got.shape)} (which units are dead); return how many: "
                    "add .sum() and int(...)")
    if isinstance(got, bool) or not isinstance(got, (int, np.integer, float)):
        raise Wrong(f"return a whole number (the count of dead units), got {type(got).__name__}")
    if got == count_dead_units(codes):
        return
    if got == int((codes == 0).any(dim=0).sum()):
        raise Wrong(f"you counted {got} units that are zero for *some* image; a dead unit is zero for *every* "
                    "image: .all(dim=0), not .any(dim=0)")
    if got == int((codes == 0).all(dim=1).sum()):
        raise Wrong(f"you counted the {got} image(s) (rows) whose whole code is zero; count the units (columns): "
                    "reduce over dim=0, the images")
    if got == int((codes != 0).any(dim=0).sum()):
        raise Wrong(f"you counted the {got} units that are alive (non-zero for some image); count the dead ones, "
                    "zero for every image")
    if got == int((codes == 0).sum()):
        raise Wrong(f"you counted the {got} zero values; count the units (columns) that are zero in every row")
    raise Wrong(f"in a batch of 4 codes of 6 units where units 0 and 5 are zero throughout, you counted {got}")


CODE = [CodeExercise("05.6", "Write count_dead_units(codes): how many code units are zero for every image.",
                     count_dead_units, check_dead_units)]

"""Exceptions the package raises for conditions a user can act on.

Bad *arguments* raise the built-in ``ValueError``/``TypeError`` at the point where the value
enters. The classes below are for the world outside the arguments: data that cannot be found or
downloaded, files that are damaged, training that went wrong. Each message says what happened and
what to do next; the command line prints it as one line instead of a traceback.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parent)


class ConvaeError(Exception):
    """Base class of every error the package raises on purpose."""


class DataError(ConvaeError):
    """A dataset is missing, damaged or cannot be downloaded."""


class CheckpointError(ConvaeError):
    """A checkpoint is damaged, foreign, or does not match the model it is loaded into."""


class RunFolderError(ConvaeError):
    """A run folder is in use, unwritable, or holds a run with other settings."""


class DiskFullError(ConvaeError):
    """The disk (or the user's quota) filled up while a file was written; the previous file was kept."""

    def __init__(self, message: str, folder=None, needed_bytes: int | None = None):
        super().__init__(message)
        self.folder, self.needed_bytes = folder, needed_bytes


class TrainingDiverged(ConvaeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""

    def __init__(self, message: str, history=None):
        super().__init__(message)
        self.history = history


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the first caller outside this package: the learner's cell or script.

    Python shows a warning with the file and line it is attributed to; a fixed ``stacklevel`` points
    into the package whenever the call goes through one more of its functions (``runs`` -> ``models``
    -> ``bits``), and the learner sees library internals instead of their own line. Where no caller is
    outside the package (its command line), the warning is attributed to the package's outermost frame.
    """
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_back is not None and _inside_package(frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)


def _inside_package(filename: str) -> bool:
    try:
        return str(Path(filename).resolve()).startswith(_PACKAGE)
    except (OSError, ValueError):  # "<frozen runpy>", "<stdin>" and the like
        return False

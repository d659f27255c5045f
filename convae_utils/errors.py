"""Exceptions the package raises for conditions a user can act on.

Bad *arguments* raise the built-in ``ValueError``/``TypeError`` at the point where the value
enters. The classes below are for the world outside the arguments: data that cannot be found or
downloaded, files that are damaged, training that went wrong. Each message says what happened and
what to do next; the command line prints it as one line instead of a traceback.
"""

from __future__ import annotations


class ConvaeError(Exception):
    """Base class of every error the package raises on purpose."""


class DataError(ConvaeError):
    """A dataset is missing, damaged or cannot be downloaded."""


class CheckpointError(ConvaeError):
    """A checkpoint is damaged, foreign, or does not match the model it is loaded into."""


class RunFolderError(ConvaeError):
    """A run folder is in use, unwritable, or holds a run with other settings."""


class TrainingDiverged(ConvaeError):
    """The loss became NaN or infinite; the last good checkpoint was kept."""

    def __init__(self, message: str, history=None):
        super().__init__(message)
        self.history = history

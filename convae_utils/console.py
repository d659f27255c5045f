"""Printing that survives any console: where the stream's encoding lacks a character, an ASCII stand-in.

A Windows console or a redirected stream in cp1252 has no ✓, ✗ or σ; ``print`` there raises
``UnicodeEncodeError`` (issue 30, item 13). :func:`say` prints the text as it is where it can, and
otherwise swaps the characters below for ASCII (anything else without a stand-in becomes ``?``).
"""

from __future__ import annotations

import sys
from typing import TextIO

ASCII_STAND_INS = {"✓": "[ok]", "✗": "[x]", "σ": "sigma", "μ": "mu", "×": "x", "→": "->", "≥": ">=",
                   "≤": "<=", "–": "-", "—": "-", "’": "'", "“": '"', "”": '"', "…": "...", "²": "^2", "≈": "~"}


def printable(text: str, encoding: str | None) -> str:
    """``text`` as ``encoding`` can hold it: unchanged where it can, else with ASCII stand-ins."""
    encoding = encoding or "utf-8"
    try:
        text.encode(encoding)
        return text
    except LookupError:  # an encoding Python does not know: ASCII is safe everywhere
        encoding = "ascii"
    except UnicodeEncodeError:
        pass
    for char, stand_in in ASCII_STAND_INS.items():
        text = text.replace(char, stand_in)
    return text.encode(encoding, errors="replace").decode(encoding)


def say(text: str, file: TextIO | None = None, *, flush: bool = False) -> None:
    """Print ``text`` to ``file`` (default: the current ``sys.stdout``), in what its encoding can hold."""
    stream = file if file is not None else sys.stdout
    print(printable(text, getattr(stream, "encoding", None)), file=stream, flush=flush)

"""Entropy coding: a quantised code as a real bitstream, decoded back, and the bits it costs.

Defined in notebook 08 (an autoencoder that wins). Notebook 06 counted a code at a fixed number of
bits per value (32, 8 or 4); a real codec spends few bits on likely values and many on rare ones,
as JPEG's Huffman-coded scan data does. Here a code (N, D) becomes bytes in four steps:

1. **quantise**: ``symbols = round(code / step)`` (:func:`convae_utils.codecs.quantizers.quantize`),
   integers (the only lossy step; a larger ``step`` means fewer bits and more distortion);
2. **model**: :func:`fit_entropy_model` fits, per code value (``D`` of them), a discretised Laplace
   or Gaussian distribution on the *training* symbols (whichever gives the training set fewer bits),
   with a symbol range taken from the training symbols plus a margin;
3. **code**: :meth:`EntropyModel.encode` writes one image's symbols as an asymmetric numeral
   systems (ANS) bitstream with the ``constriction`` library, one independent stream per image, so
   each image can be decoded on its own (as each JPEG file can);
4. **decode**: :meth:`EntropyModel.decode` reads the symbols back; :func:`code_images` checks that
   every image round-trips exactly before it reports a single bit.

The decoder must know the model: its parameters (a family flag, mean and scale as float32, the
symbol range as two int16 per code value) are **side information**, ``EntropyModel.side_bits``
in all, sent once for a whole collection of images and not counted per image, like the
quantisation and Huffman tables of JPEG's header that :func:`convae_utils.baselines.jpeg_roundtrip`
leaves out of its scan-data count. Test symbols outside the model's range are clipped to it (the
decoded code is the clipped one, so the clipping shows up as distortion, never as a hidden cost).

``constriction`` publishes wheels for Linux and Windows on x86-64 and for macOS, but none for Linux
on Arm (aarch64, musllinux) or Windows on Arm, and no source package, so it is an optional
dependency. Where it is missing (:func:`coder_available` is False) :func:`code_images` reports the
model's **ideal** bits instead (``-log2`` of each symbol's probability mass, what an ideal coder
would spend; a real ANS stream costs a few bytes more per image) and says so (``CodedImages.ideal``,
:data:`NO_CODER_NOTE`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FAMILIES = ("laplace", "gaussian")
MARGIN = 2  # symbols beyond the training range that still get a code (rarer ones are clipped)
MIN_SCALE = 0.05  # in steps: a code value that never moved still needs a positive scale
SIDE_BITS_PER_VALUE = 1 + 32 + 32 + 16 + 16  # family flag, mean, scale (float32), symbol range (2 x int16)
CODER_REQUIREMENT = "constriction>=0.4,<0.6"
# where PyPI has its wheels (0.5.0): pyproject.toml and environment.yml carry this marker (tests/test_packaging.py)
CODER_MARKER = ('platform_machine == "x86_64" or platform_machine == "AMD64" or '
                '(sys_platform == "darwin" and platform_machine == "arm64")')
NO_CODER_NOTE = ("the entropy coder (the constriction package) is not installed here: it has no wheel for "
                 "Linux on Arm (aarch64) or Windows on Arm. The bits shown are the entropy model's IDEAL bits "
                 "(-log2 of each symbol's probability mass), not the size of real bitstreams, and nothing was "
                 f"decoded back. Where a wheel exists: pip install '{CODER_REQUIREMENT}'")


def coder_available() -> bool:
    """True when the ``constriction`` package (the entropy coder) can be imported on this machine."""
    try:
        import constriction  # noqa: F401
    except ImportError:
        return False
    return True


def _constriction():
    try:
        import constriction
    except ImportError as exc:
        raise ImportError(f"writing a bitstream needs the constriction package: pip install '{CODER_REQUIREMENT}' "
                          "(it has no wheel for Linux on Arm or Windows on Arm; there, code_images counts "
                          "ideal bits instead)") from exc
    return constriction


def _laplace_cdf(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (x - mean) / scale
    return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0)), 1 - 0.5 * np.exp(-np.maximum(z, 0)))


def _gaussian_cdf(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr((x - mean) / scale)


def _bits_of(symbols: np.ndarray, family: str, mean, scale, low, high) -> np.ndarray:
    """Ideal bits (-log2 of the discretised probability) of each symbol, (N, D); ends take the tails."""
    cdf = _laplace_cdf if family == "laplace" else _gaussian_cdf
    upper = np.where(symbols >= high, 1.0, cdf(symbols + 0.5, mean, scale))
    lower = np.where(symbols <= low, 0.0, cdf(symbols - 0.5, mean, scale))
    return -np.log2(np.maximum(upper - lower, 1e-12))


@dataclass(frozen=True, eq=False)
class EntropyModel:
    """A discretised Laplace or Gaussian per code value, fitted on training symbols.

    Attributes (arrays of length D, one entry per code value):
        laplace: True where the Laplace family was chosen, False for the Gaussian.
        mean, scale: the distribution's location and scale, in quantisation steps (float32).
        low, high: the symbol range it codes (int32); symbols outside are clipped to it.
    """

    laplace: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def dim(self) -> int:
        return len(self.mean)

    @property
    def side_bits(self) -> int:
        """Bits the decoder needs once, for all images: ``97 x D`` (see the module docstring)."""
        return SIDE_BITS_PER_VALUE * self.dim

    def _check(self, symbols, name: str = "symbols") -> np.ndarray:
        symbols = np.asarray(symbols)
        if symbols.ndim != 2 or symbols.shape[1] != self.dim or not np.issubdtype(symbols.dtype, np.integer):
            raise ValueError(f"expected integer {name} of shape (N, {self.dim}), got {symbols.dtype} {symbols.shape}")
        return symbols

    def clip(self, symbols) -> np.ndarray:
        """Symbols (N, D) clipped to each value's coded range, int32: what the bitstream can carry."""
        return np.clip(self._check(symbols), self.low, self.high).astype(np.int32)

    def information_bits(self, symbols) -> np.ndarray:
        """Ideal bits per image, (N,): the sum of -log2 p over its clipped symbols (no coder overhead)."""
        symbols = self.clip(symbols)
        bits = np.zeros(symbols.shape, dtype=np.float64)
        for family, where in (("laplace", self.laplace), ("gaussian", ~self.laplace)):
            if where.any():
                bits[:, where] = _bits_of(symbols[:, where], family, self.mean[where], self.scale[where],
                                          self.low[where], self.high[where])
        return bits.sum(axis=1)

    def _groups(self):
        """(indices, constriction model) per family present; the model is defined on that group's range."""
        model = _constriction().stream.model
        groups = []
        for family, where in (("laplace", self.laplace), ("gaussian", ~self.laplace)):
            index = np.flatnonzero(where)
            if len(index):
                make = model.QuantizedLaplace if family == "laplace" else model.QuantizedGaussian
                groups.append((index, make(int(self.low[index].min()), int(self.high[index].max()))))
        return groups

    def push(self, coder, symbols: np.ndarray) -> None:
        """Put one image's symbols (D,) onto ``coder`` (a ``constriction`` ``AnsCoder``, a stack: what is
        pushed last is popped first). Several models can share one coder, so one image's parts (a
        hyperprior's side values and the code they describe) make one bitstream."""
        symbols = self._check(np.asarray(symbols)[None])[0]
        if (symbols < self.low).any() or (symbols > self.high).any():
            raise ValueError("symbols outside the model's range: clip them first with EntropyModel.clip")
        for index, model in reversed(self._groups()):  # a stack: encode last what is decoded first
            coder.encode_reverse(symbols[index].astype(np.int32), model,
                                 self.mean[index].astype(np.float64), self.scale[index].astype(np.float64))

    def pop(self, coder) -> np.ndarray:
        """Take one image's symbols (D,), int32, off ``coder``: the inverse of :meth:`push`."""
        symbols = np.empty(self.dim, dtype=np.int32)
        for index, model in self._groups():
            symbols[index] = coder.decode(model, self.mean[index].astype(np.float64),
                                          self.scale[index].astype(np.float64))
        return symbols

    def encode(self, symbols: np.ndarray) -> bytes:
        """One image's symbols (D,) -> its bitstream (bytes). Symbols must lie in the coded range."""
        coder = new_coder()
        self.push(coder, symbols)
        return coder_bytes(coder)

    def decode(self, data: bytes) -> np.ndarray:
        """A bitstream from :meth:`encode` -> the image's symbols (D,), int32."""
        return self.pop(coder_from_bytes(data))


def new_coder():
    """An empty ``constriction`` ANS coder (a stack of symbols)."""
    return _constriction().stream.stack.AnsCoder()


def coder_bytes(coder) -> bytes:
    """A coder's bitstream as bytes: whole 32-bit words, the top word's unused high bytes left out."""
    return coder.get_compressed().astype("<u4").tobytes().rstrip(b"\0")


def coder_from_bytes(data: bytes):
    """An ANS coder that reads back the bitstream :func:`coder_bytes` wrote."""
    padded = data + b"\0" * (-len(data) % 4)
    return _constriction().stream.stack.AnsCoder(np.frombuffer(padded, dtype="<u4").astype(np.uint32))


def fit_entropy_model(train_symbols) -> EntropyModel:
    """Fit an :class:`EntropyModel` on integer training symbols (N, D), e.g. ``quantize(train_codes, step)``.

    Per code value: the Laplace's maximum-likelihood mean and scale (median, mean absolute deviation)
    and the Gaussian's (mean, standard deviation), scales at least ``MIN_SCALE``; the family that gives
    the training symbols fewer bits is kept. The range is the training range widened by ``MARGIN``.
    """
    symbols = np.asarray(train_symbols)
    if symbols.ndim != 2 or len(symbols) == 0 or not np.issubdtype(symbols.dtype, np.integer):
        raise ValueError(f"expected integer train_symbols of shape (N, D) with N >= 1, got "
                         f"{symbols.dtype} {symbols.shape}; quantise the codes first (codecs.quantizers.quantize)")
    values = symbols.astype(np.float64)
    low = symbols.min(axis=0).astype(np.int32) - MARGIN
    high = symbols.max(axis=0).astype(np.int32) + MARGIN
    fits = {}
    for family in FAMILIES:
        if family == "laplace":
            mean = np.median(values, axis=0)
            scale = np.abs(values - mean).mean(axis=0)
        else:
            mean, scale = values.mean(axis=0), values.std(axis=0)
        mean, scale = mean.astype(np.float32), np.maximum(scale, MIN_SCALE).astype(np.float32)
        fits[family] = (mean, scale, _bits_of(symbols, family, mean, scale, low, high).sum(axis=0))
    laplace = fits["laplace"][2] <= fits["gaussian"][2]
    mean = np.where(laplace, fits["laplace"][0], fits["gaussian"][0]).astype(np.float32)
    scale = np.where(laplace, fits["laplace"][1], fits["gaussian"][1]).astype(np.float32)
    return EntropyModel(laplace, mean, scale, low, high)


@dataclass(frozen=True)
class CodedImages:
    """What :func:`code_images` returns: the decoded symbols and what each image cost."""

    symbols: np.ndarray        # (N, D) int32: decoded from the bitstreams (equal to the clipped input)
    bits: np.ndarray           # (N,) bits of each image's bitstream (8 x its bytes); the ideal bits if ``ideal``
    information_bits: np.ndarray  # (N,) the model's ideal bits, without the coder's overhead
    clipped: int               # symbols that lay outside the model's range and were clipped
    side_bits: int             # the model's parameters, once for all images
    ideal: bool = False        # True: no coder on this machine, ``bits`` are ideal bits (NO_CODER_NOTE)

    @property
    def bits_per_image(self) -> float:
        return float(self.bits.mean())


def code_images(model: EntropyModel, symbols) -> CodedImages:
    """Entropy-code every image's symbols (N, D), decode each bitstream back and check it round-trips.

    Without the coder (:func:`coder_available` False) nothing is written: ``bits`` are the ideal bits
    and ``ideal`` is True. Raises RuntimeError if any image decodes to other symbols than it was
    encoded from (it never should: the check is what makes the bit count trustworthy).
    """
    symbols = model._check(symbols)
    clipped = model.clip(symbols)
    information = model.information_bits(clipped)
    changed = int((clipped != symbols).sum())
    if not coder_available():
        return CodedImages(clipped, information, information, changed, model.side_bits, ideal=True)
    streams = [model.encode(row) for row in clipped]
    decoded = np.stack([model.decode(s) for s in streams])
    if not np.array_equal(decoded, clipped):
        bad = int((decoded != clipped).any(axis=1).sum())
        raise RuntimeError(f"{bad} of {len(clipped)} bitstreams did not decode to the symbols they came from")
    return CodedImages(decoded, np.array([8 * len(s) for s in streams], dtype=np.int64),
                       information, changed, model.side_bits)

"""Codecs: how the series turns a code into bits and counts them, in one place.

- :mod:`~convae_utils.codecs.bits`: counting bits (a code's size beside the 24,576-bit image, nats to bits);
- :mod:`~convae_utils.codecs.quantizers`: quantising (fixed-length levels over a range; a uniform step);
- :mod:`~convae_utils.codecs.entropy_coding`: an entropy model of the quantised code and real bitstreams
  (``constriction``), decoded back;
- :mod:`~convae_utils.codecs.curves`: codec curves (bits per image against PSNR) of a model and of PCA,
  PCA's best codec, and curves compared at equal bits.

Import the part you need (``from convae_utils.codecs import curves``): this file imports none of them,
so that the low layers (``bits``, ``quantizers``) stay importable by the models without pulling in
the curves, which use the models.
"""

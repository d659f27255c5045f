"""convae_utils: the helper package of the convae notebook series.

Modules: ``models`` (the autoencoder), ``data`` (CIFAR-10 and the offline stand-in), ``training``
(``fit`` with checkpoints), ``runs`` (load-or-train run folders), ``metrics``, ``plotting``,
``widgets`` (the epoch scrubber), ``bench`` and ``config`` (profiles and environment switches).
"""

__version__ = "0.1.0"

"""convae_utils: the helper package of the convae notebook series.

The lessons' modules, lowest layer first (``pyproject.toml`` writes the layers down and
``lint-imports`` checks them):

- ``checks``, ``errors``: argument checks and the exceptions a user can act on;
- ``settings`` (the one settings record, presets, the environment), ``fileio`` (atomic writes, locks);
- ``images`` (the uint8 image container, normalisation), ``models`` (the autoencoder), ``history``;
- ``codecs`` (bits counted, quantisers, entropy coding, codec curves and PCA's best codec);
- ``cifar10`` (download, verify, load), ``shapes`` (the offline stand-in);
- ``data`` (splits, exemplars, the dataset switch);
- ``training`` (the step, the epoch, ``fit``), ``metrics``, ``article`` (the article's own pipeline);
- ``plotting``, ``widgets`` (the epoch scrubber), ``runs`` (load-or-train run folders).

The learner's command line is ``cli`` (``train``, ``download``, ``series``): ``python -m convae_utils --help``.
The maintainer's tools (benchmark, workshop kit, headless studies) are not part of the package: they live
in the repository's ``tools/`` folder (``python -m tools --help``).
"""

__version__ = "0.2.0"

"""The maintainer's tools, beside the package and not part of it: ``python -m tools {bench,kit,study,sync}``.

The benchmark (``make bench``), the workshop kit (``make kit``), the headless studies that produce the
numbers the README and the notebooks cite (``make study STUDY=08``), and the notebooks' shared headers
(``make sync``). They import ``convae_utils``; the package never imports them, and its wheel does not
carry them (``tests/test_packaging.py`` builds one and looks). Run them from the repository's root.
"""

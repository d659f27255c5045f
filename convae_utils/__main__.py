"""``python -m convae_utils ...``: the command line (see ``convae_utils.cli``)."""

import sys

from .cli import main

sys.exit(main())

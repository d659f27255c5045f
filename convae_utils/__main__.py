"""``python -m convae_utils ...``: the command line (see ``convae_utils.tools.cli``)."""

import sys

from .tools.cli import main

sys.exit(main())

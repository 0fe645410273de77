"""``python -m kvmsentry``: the same as the ``kvmsentry`` command."""

import sys

from kvmsentry.cli import main

sys.exit(main())

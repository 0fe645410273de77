"""``python -m kvmsentry``: the same as the ``kvmsentry`` command."""

from kvmsentry.cli import run

run()

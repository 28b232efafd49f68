"""``python -m mpibohb COMMAND ...``: see :mod:`mpibohb.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())

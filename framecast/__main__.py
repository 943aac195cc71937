"""``python -m framecast``: the same as the ``framecast`` command."""

import sys

from framecast.cli import main

if __name__ == "__main__":
    sys.exit(main())

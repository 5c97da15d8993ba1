"""``python -m phoenix``: see phoenix._cli."""

import sys

from phoenix._cli import main

sys.exit(main())

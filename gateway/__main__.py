"""``python -m gateway``: see gateway._main."""

import sys

from gateway._main import main

sys.exit(main())

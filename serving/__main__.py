"""``python -m serving {query,serve-dev} ...`` (the same commands as ``csp-tf``)."""

import sys

from serving.cli import main

sys.exit(main())

"""``python -m csp_cli ...`` = ``csp-tf ...``."""

import sys

from csp_cli import main

sys.exit(main())

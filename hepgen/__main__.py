"""`python -m hepgen ...` is the `hepgen` command, for environments whose scripts are not on PATH."""

import sys

from hepgen.cli import main

sys.exit(main())

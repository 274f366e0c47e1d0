"""``python -m hepgen.cli`` is the ``hepgen`` command."""

import sys

from hepgen.cli import main

sys.exit(main())

"""``python -m msqmri``: same as the ``msqmri`` command."""

import sys

from msqmri.cli import main

sys.exit(main())

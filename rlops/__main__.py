"""`python -m rlops` is the `rlops` command."""

import sys

from rlops.cli import main

sys.exit(main())

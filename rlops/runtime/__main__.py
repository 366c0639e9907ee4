"""`python -m rlops.runtime --spec FILE --run-dir DIR`: see rlops.runtime.main."""

import sys

from rlops.runtime.main import main

sys.exit(main())

"""`python -m ownsona` is the same as the `ownsona` command."""

import sys

from ownsona.cli import main

sys.exit(main())

"""`python -m planner.cli` runs the kvplan command."""

import sys

from planner.cli.main import main

sys.exit(main())

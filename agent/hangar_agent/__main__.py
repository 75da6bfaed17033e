"""Allow ``python -m hangar_agent``."""

import sys

from hangar_agent.cli import main

sys.exit(main())

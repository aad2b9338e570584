"""``python -m clcourse ...`` = the ``clcourse`` command."""
import sys

from .cli import main

sys.exit(main())

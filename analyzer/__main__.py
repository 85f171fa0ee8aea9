"""python -m analyzer: the same as the `analyze` command."""
import sys

from .output.cli import main

sys.exit(main())

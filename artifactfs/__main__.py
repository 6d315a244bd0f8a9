"""`python -m artifactfs`: the same entry point as the `artifactfs` command (artifactfs.cli)."""

import sys

from artifactfs.cli import main

sys.exit(main())

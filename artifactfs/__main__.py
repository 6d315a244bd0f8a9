import sys

from artifactfs.cli import main

sys.exit(main())

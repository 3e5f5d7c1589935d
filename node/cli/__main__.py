"""``python -m node.cli``: the gridledger command."""

import sys

from node.cli.main import main

sys.exit(main())

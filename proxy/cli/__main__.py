"""`python -m proxy.cli ...` runs the `docschat` command."""

import sys

from proxy.cli.main import main

sys.exit(main())

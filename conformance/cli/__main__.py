import sys

from refact.conformance.cli import main

sys.exit(main())

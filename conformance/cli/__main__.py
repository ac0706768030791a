import os
import sys

from refact.conformance.cli import EXIT_INTERRUPTED, main

status = main()
if status == EXIT_INTERRUPTED:
    # Run by ``python -m``, a KeyboardInterrupt that passed through code run from a string
    # (a namedtuple's, a C extension's start-up) makes the interpreter end itself by SIGINT
    # whatever the status; main() has stopped the workers and flushed the output.
    os._exit(status)
sys.exit(status)

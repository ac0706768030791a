"""The ``refact`` command: one entry point, one module per subcommand.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``;
it is imported only when its subcommand runs, so ``refact backends`` never pays for
mpmath and a broken optional module cannot break the others.
"""

import argparse
import importlib
import sys

# name -> (module, one-line help)
COMMANDS = {
    "conform": ("refact.conformance.cli.conform", "run the conformance checks and write reports"),
    "truth": ("refact.conformance.cli.truth", "print the oracle's value of a function at a point"),
    "backends": ("refact.backends.listing", "list built-in and plugin backends"),
    "diff": ("refact.conformance.cli.diff", "compare two JSON reports: regressions and improvements"),
    "sweep": ("refact.conformance.cli.sweep", "exhaustive or ranged sweep of one function over a format"),
    "golden": ("refact.conformance.cli.golden", "rebuild or re-check the shipped golden vectors (maintainers)"),
}


class UsageError(Exception):
    """A usage or configuration error: the command exits with status 2."""


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="refact", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints usage (exit 2) or --help (exit 0)
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    command_parser = argparse.ArgumentParser(prog=f"refact {name}", description=COMMANDS[name][1])
    module.add_arguments(command_parser)
    args = command_parser.parse_args(argv[1:])
    try:
        return module.run(args)
    except UsageError as error:
        print(f"refact {name}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

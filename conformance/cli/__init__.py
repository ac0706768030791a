"""The ``refact`` command: one entry point, one module per subcommand.

Each subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``;
it is imported only when its subcommand runs, so ``refact backends`` never pays for
mpmath and a broken optional module cannot break the others.

Exit statuses shared by the subcommands: 0 success, 1 failures found, 2 a usage error
(:class:`UsageError`, or argparse's own) or a missing extra (:func:`missing_extra`), 3 a
report that could not be written (:func:`cannot_write`), 130 interrupted (Ctrl-C).
"""

import argparse
import importlib
import os
import platform
import signal
import sys

#: The distribution's name on the package index: "refact" there is another project, so
#: the distribution is refact-numerics while the import package and the command stay refact.
DISTRIBUTION = "refact-numerics"

# name -> (module, one-line help)
COMMANDS = {
    "conform": ("refact.conformance.cli.conform", "run the conformance checks and write reports"),
    "truth": ("refact.conformance.cli.truth", "print the oracle's value of a function at a point"),
    "backends": ("refact.backends.listing", "list built-in and plugin backends"),
    "diff": ("refact.conformance.cli.diff", "compare two JSON reports: regressions and improvements"),
    "sweep": ("refact.conformance.cli.sweep", "exhaustive or ranged sweep of one function over a format"),
    "golden": ("refact.conformance.cli.golden", "rebuild or re-check the shipped golden vectors (maintainers)"),
    "report": ("refact.conformance.cli.report", "print a saved JSON report: matrices, worst findings, counts"),
}


EXIT_USAGE = 2
#: A report (or other output file) could not be written; the others were.
EXIT_UNWRITTEN = 3
#: 128 + SIGINT: what a shell reports for a command that Ctrl-C stopped.
EXIT_INTERRUPTED = 130
INTERRUPTED_LINE = "refact: interrupted"


class UsageError(Exception):
    """A usage or configuration error: the command exits with status 2."""


#: Top-level modules the subcommands import, and the extra of this distribution that
#: installs each. A missing one is a line naming the pip command, not a traceback.
EXTRA_OF_MODULE = {
    "numpy": "conformance", "mpmath": "conformance", "gmpy2": "conformance",
    "jsonschema": "conformance", "dask": "sweep", "distributed": "sweep",
}

EPILOG = """\
exit status: 0 success, 1 failures found, 2 a usage error or a missing extra
(one line naming the pip install to run), 3 a report that could not be written,
130 interrupted (Ctrl-C). Each subcommand's --help says more.
"""


def version_line():
    """``refact --version``: the distribution, its version and the Python running it. The
    version is the installed metadata's, or the package's own when it runs uninstalled
    (vendored, or from a source tree on sys.path)."""
    from importlib import metadata

    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        from refact import __version__ as version
    return f"{DISTRIBUTION} {version} (Python {platform.python_version()})"


def missing_extra(error):
    """The extra that installs the module whose absence raised ``error`` (an ImportError,
    or one raised from it), or None when no extra of this distribution provides it."""
    while error is not None:
        if isinstance(error, ImportError) and error.name:
            extra = EXTRA_OF_MODULE.get(error.name.split(".")[0])
            if extra is not None:
                return extra
        error = error.__cause__
    return None


def _reason(error, path):
    text = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    named = f"{path}: "
    if named in text:  # the writer named the path already; the line names it once
        text = text.split(named, 1)[1]
    return " ".join(text.split()) or type(error).__name__


def cannot_write(what, path, error):
    """Say on stderr, in one line, that ``what`` (say "JSON report") could not be written to
    ``path`` and why; the caller goes on and exits with EXIT_UNWRITTEN."""
    print(f"refact: cannot write {what} to {path}: {_reason(error, path)}", file=sys.stderr)


# --------------------------------------------------------------------------- Ctrl-C
# The default handler raises KeyboardInterrupt in the main thread, which then waits, in the
# process pools' shutdown, for every worker to finish its job: minutes, or forever for a
# backend that hangs. So the handler stops this process's children first (their own
# workers exit when they see their parent gone), then KeyboardInterrupt unwinds as usual
# and main() says one line. Some libraries swallow KeyboardInterrupt (mpmath imports gmpy2
# under a bare ``except:``), so the handler also remembers that it ran.

_interrupts = []


def _child_pids():
    """This process's children that multiprocessing does not know yet (one being started
    when Ctrl-C came), from /proc where there is one."""
    me = os.getpid()
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    pids = []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                status = file.read()
        except OSError:
            continue  # gone meanwhile
        # "pid (command) state ppid ...": the command may hold spaces and parentheses
        fields = status[status.rfind(b")") + 1:].split()
        if len(fields) > 1 and fields[1] == str(me).encode():
            pids.append(int(entry))
    return pids


def _stop_child_processes():
    """SIGTERM to every child (multiprocessing's resource tracker ignores it and leaves
    when this process does); a worker still there after a second is killed."""
    multiprocessing = sys.modules.get("multiprocessing")
    try:
        workers = multiprocessing.active_children() if multiprocessing else []
        for pid in {worker.pid for worker in workers} | set(_child_pids()):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass  # already gone
        for worker in workers:
            worker.join(timeout=1.0)
            if worker.is_alive():
                worker.kill()
    except (OSError, ValueError, RuntimeError):
        pass  # nothing more can be done on the way out


def _interrupted(signum, frame):
    _interrupts.append(signum)
    signal.signal(signal.SIGINT, _interrupted_again)
    _stop_child_processes()
    raise KeyboardInterrupt


def _interrupted_again(signum, frame):
    # a second Ctrl-C while the first one unwinds, or after it was swallowed: leave now
    _stop_child_processes()
    _say_interrupted()
    os._exit(EXIT_INTERRUPTED)


def _say_interrupted():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    try:
        print(INTERRUPTED_LINE, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def main(argv=None):
    """Run one subcommand; returns its exit status. Ctrl-C anywhere is one line on stderr
    and status 130, never a traceback."""
    installed = False
    try:
        previous = signal.getsignal(signal.SIGINT)
        # SIG_IGN: started in the background, where Ctrl-C is not meant for us
        if previous is not signal.SIG_IGN and previous is not None:
            signal.signal(signal.SIGINT, _interrupted)
            installed = True
    except ValueError:
        pass  # not the main thread, where signals are not delivered anyway
    _interrupts.clear()
    try:
        status = _main(argv)
    except KeyboardInterrupt:
        _interrupts.append(signal.SIGINT)
    finally:
        if installed:
            # Run as the command (arguments from sys.argv) the status is final: a Ctrl-C
            # while the interpreter exits must not turn it into a death by SIGINT.
            signal.signal(signal.SIGINT, signal.SIG_IGN if argv is None else previous)
    if _interrupts:
        _stop_child_processes()
        _say_interrupted()
        return EXIT_INTERRUPTED
    return status


def _main(argv):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="refact", description=__doc__.splitlines()[0], epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, summary) in COMMANDS.items():
        sub.add_parser(name, help=summary, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        try:
            parser.parse_args(argv)
        except SystemExit as done:  # printed --help or --version (0), or the usage (2)
            return done.code
        parser.print_help()
        return 2
    name = argv[0]
    try:
        return _run_command(name, argv[1:])
    except ImportError as error:
        extra = missing_extra(error)
        if extra is None:
            raise  # not a dependency of an extra: a bug, whose traceback is wanted
        print(f'refact {name} needs the {extra} extra: pip install "{DISTRIBUTION}[{extra}]"',
              file=sys.stderr)
        return EXIT_USAGE


def _run_command(name, argv):
    module = importlib.import_module(COMMANDS[name][0])
    command_parser = argparse.ArgumentParser(prog=f"refact {name}", description=COMMANDS[name][1])
    module.add_arguments(command_parser)
    try:
        args = command_parser.parse_args(argv)
    except SystemExit as done:  # argparse printed --help (0) or a usage error naming the option (2)
        return done.code
    try:
        return module.run(args)
    except UsageError as error:
        print(f"refact {name}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""``refact diff OLD NEW``: regressions and improvements between two JSON reports;
``refact diff --across A B REPORT``: where backend B is worse than backend A in one report."""

import argparse
import sys

from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import read_valid_report
from refact.conformance.report.diff import compare, compare_across, render_markdown, render_text
from refact.conformance.report.writers import to_json_text
from refact.conformance.truth.store import atomic_write_text

EXIT_STATUS = f"""\
exit status:
  0    no regression (with --across: B is nowhere worse than A)
  1    a regression (with --across: B is worse than A somewhere)
  2    usage error: an input unreadable, not JSON or not a refact.report/1 report, a backend
       --across names that the report has no record of
  {EXIT_UNWRITTEN}    the --markdown file could not be written (the diff is still printed)
  130  interrupted (Ctrl-C)

Reports made differently (seed, --cases level, refact version, a backend's version, device,
platform or CPU) are still compared, with one warning line per difference on stderr and in
the output: a change may come from that rather than from an implementation.
A backend with a variant is named name[variant], e.g. --across torch torch[compile].
"""


# --------------------------------------------------------------------------- command

def add_arguments(parser):
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("old", metavar="OLD.json", help="the earlier report (refact.report/1); with --across, the report")
    parser.add_argument("new", metavar="NEW.json", nargs="?", help="the later report (not with --across)")
    parser.add_argument("--across", nargs=2, metavar=("A", "B"),
                        help="compare backend B against backend A within one report")
    parser.add_argument("--markdown", metavar="F", help="also write the diff as Markdown to F")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON instead of a table")


def _compared(args):
    """The diff the arguments ask for, its inputs read and checked first."""
    if args.across and args.new is not None:
        raise UsageError(f"--across compares two backends of one report: give one REPORT.json, "
                         f"not {args.old} and {args.new}")
    if not args.across and args.new is None:
        raise UsageError("give two reports, OLD.json and NEW.json (or --across A B REPORT.json)")
    if args.across and args.across[0] == args.across[1]:
        raise UsageError(f"--across needs two different backends, got {args.across[0]!r} twice")
    old_report = read_valid_report(args.old)
    new_report = None if args.across else read_valid_report(args.new)
    try:
        if args.across:
            return compare_across(old_report, *args.across)
        return compare(old_report, new_report)
    except ValueError as error:
        raise UsageError(str(error)) from error


def run(args):
    result = _compared(args)
    for warning in result.warnings:
        print(f"refact diff: warning: {warning}", file=sys.stderr)
    unwritten = False
    if args.markdown:
        try:
            atomic_write_text(args.markdown, render_markdown(result, args.old, args.new))
        except (OSError, ValueError) as error:
            cannot_write("Markdown report", args.markdown, error)
            unwritten = True
    print(to_json_text(result.to_dict()) if args.json else render_text(result), end="")
    if unwritten:
        return EXIT_UNWRITTEN
    return 1 if result.regressions else 0

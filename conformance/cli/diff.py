"""``refact diff BEFORE AFTER``: regressions and improvements between two JSON reports."""

import argparse

from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import read_valid_report
from refact.conformance.report.diff import compare, render_markdown, render_text
from refact.conformance.report.writers import to_json_text
from refact.conformance.truth.store import atomic_write_text

EXIT_STATUS = f"""\
exit status:
  0    no regression
  1    a regression
  2    usage error: an input unreadable, not JSON or not a refact.report/1 report
  {EXIT_UNWRITTEN}    the --markdown file could not be written (the diff is still printed)
  130  interrupted (Ctrl-C)
"""


# --------------------------------------------------------------------------- command

def add_arguments(parser):
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("old", metavar="OLD.json", help="the earlier report (refact.report/1)")
    parser.add_argument("new", metavar="NEW.json", help="the later report")
    parser.add_argument("--markdown", metavar="F", help="also write the diff as Markdown to F")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON instead of a table")


def run(args):
    old_report, new_report = read_valid_report(args.old), read_valid_report(args.new)
    try:
        result = compare(old_report, new_report)
    except ValueError as error:
        raise UsageError(str(error)) from error
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

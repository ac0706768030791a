"""``refact report REPORT.json``: print a saved JSON report as ``refact conform`` ends a run
(the matrices, the worst findings, the counts), or with ``--matrix FMT`` the overview
matrix of one format alone, as text or (``--markdown``) as the Markdown table the
README shows."""

import argparse

from refact.conformance.cli import UsageError
from refact.conformance.cli.options import read_valid_report
from refact.conformance.report.terminal import LEGEND, markdown_matrix, render_matrix, render_summary

EXIT_STATUS = """\
exit status:
  0    printed
  2    usage error: the report unreadable, not JSON or not a refact.report/1 report;
       --matrix naming a format the report has no accuracy record in; --markdown
       without --matrix
  130  interrupted (Ctrl-C)

The width is the COLUMNS variable's, else the terminal's, else 160 (a CI log); a matrix
wider than that is printed in blocks of whole columns, a finding is cut at a space with an
ellipsis (--details and the JSON report have every finding and every point).
"""


def add_arguments(parser):
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("report", metavar="REPORT.json", help="a report written by refact conform --json")
    parser.add_argument("--matrix", metavar="FMT", help="only the accuracy matrix of this format (e.g. float32)")
    parser.add_argument("--markdown", action="store_true", help="with --matrix: as a Markdown table")
    parser.add_argument("--details", action="store_true",
                        help="every finding rather than the worst few")


def run(args):
    if args.markdown and not args.matrix:
        raise UsageError("--markdown needs --matrix FMT: only the matrix has a Markdown form here "
                         "(refact conform --markdown FILE writes the whole report)")
    report = read_valid_report(args.report)
    if args.matrix is None:
        print("\n".join(render_summary(report, details=args.details)))
        return 0
    lines = markdown_matrix(report, args.matrix) if args.markdown else render_matrix(report, args.matrix)
    if not lines:
        formats = sorted({r["format"] for r in report["results"] if r["check"] == "accuracy"})
        raise UsageError(f"--matrix {args.matrix}: {args.report} has no accuracy record in that format; "
                         f"it has {', '.join(formats) or 'none'}")
    if not args.markdown:
        lines.append(LEGEND)
    print("\n".join(lines))
    return 0

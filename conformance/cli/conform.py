"""``refact conform``: run the conformance checks and write the reports (JSON, Markdown, JUnit, HTML)."""

import argparse
import os
import sys

from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import (
    count, fail_on_words, names, non_negative_integer, read_valid_report, seconds,
)
from refact.conformance.cases.sets import LEVELS
from refact.conformance.run.records import CHECKS, SEVERITIES, STATUSES
from refact.conformance.numbers.formats import FORMATS
from refact.conformance.run.runner import run_conformance
from refact.conformance.truth.catalog import NAMES


#: How each report is named in a message.
REPORT_KINDS = {"json": "JSON", "markdown": "Markdown", "junit": "JUnit", "html": "HTML"}

EXIT_STATUS = f"""\
exit status:
  0    no record has a status or a severity named by --fail-on
  1    one has; or a backend named by --backend cannot run (an error); or a record regressed
       against --baseline (it counts as a fail, of its own severity), including a baseline
       record of a backend, function, format and check this run was asked for that it lacks
  2    usage error: a bad option value, an unknown name, an unreadable or invalid --baseline
       (checked before the run starts); or the conformance extra is not installed (one line
       naming the pip install to run)
  {EXIT_UNWRITTEN}    a report could not be written (one line each; the others were written),
       whatever the results
  130  interrupted (Ctrl-C)

--fail-on takes comma-separated words: statuses ({", ".join(STATUSES)})
and severities ({", ".join(SEVERITIES)}) of records. "--fail-on critical" fails on critical
records only, "--fail-on fail,error" (the default) on every failed or crashed check,
"--fail-on ''" never.
A --baseline made differently (seed, --cases level, refact version, a backend's version,
device, platform or CPU) is still compared, with one warning line per difference.
"""


def add_arguments(parser):
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--backend", action="append", default=[], metavar="NAME",
                        help="backend to check (repeatable or comma-separated; default: all)")
    parser.add_argument("--function", action="append", default=[], metavar="NAME",
                        help="canonical function (repeatable or comma-separated; default: all)")
    parser.add_argument("--format", action="append", default=[], metavar="FMT",
                        help="float64, float32, float16, bfloat16 (default: all)")
    parser.add_argument("--check", action="append", default=[], metavar="CHECK",
                        help=", ".join(CHECKS) + " (default: all)")
    parser.add_argument("--cases", choices=LEVELS, default="default",
                        help="size of the case sets; 'full' adds every 16-bit input")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps, gpu ...")
    parser.add_argument("--seed", type=non_negative_integer, default=0, help="seed of the sampled cases (default 0)")
    parser.add_argument("--timeout", type=seconds, default=120.0,
                        help="seconds a backend may take for one call before it is an error (default 120)")
    parser.add_argument("--jobs", type=count, default=None, help="parallel backends (default: cores)")
    parser.add_argument("--json", metavar="FILE")
    parser.add_argument("--markdown", metavar="FILE")
    parser.add_argument("--markdown-full", action="store_true",
                        help="--markdown writes every record, not the compact job summary")
    parser.add_argument("--junit", metavar="FILE")
    parser.add_argument("--html", metavar="FILE")
    parser.add_argument("--baseline", metavar="OLD.json",
                        help="compare with an earlier report; a regression counts as 'fail'")
    parser.add_argument("--fail-on", type=fail_on_words(STATUSES, SEVERITIES), default="fail,error",
                        metavar="WORDS",
                        help=f"statuses ({', '.join(STATUSES)}) or severities ({', '.join(SEVERITIES)}) "
                             "that make the exit status 1 (default: fail,error)")
    parser.add_argument("--quiet", action="store_true", help="no summary table")
    parser.add_argument("--details", action="store_true",
                        help="list every failed, erroring or convention record, not only the worst few")


def _selection(values, allowed, what):
    chosen = names(values)
    unknown = [v for v in chosen if allowed is not None and v not in allowed]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(unknown)}; expected one of {', '.join(allowed)}")
    return chosen or None


def summary_table(report, details=False):
    """The text printed at the end of a run (report/terminal.py): a line per backend, the
    accuracy matrix of each format, the worst findings (every one with ``details``) and
    the counts, fitted to the terminal's width."""
    from refact.conformance.report.terminal import render_summary

    return "\n".join(render_summary(report, details=details))


def run(args):
    from refact.conformance.report.writers import write_reports

    functions = _selection(args.function, NAMES, "function")
    formats = _selection(args.format, tuple(FORMATS), "format")
    check_names = _selection(args.check, CHECKS, "check")
    backends = _selection(args.backend, None, "backend")
    if backends:
        from refact.backends import target_of

        for name in backends:
            try:
                target_of(name)  # from metadata: a plugin is imported only in its own processes
            except Exception as error:
                raise UsageError(str(error)) from None
    baseline = None
    if args.baseline:
        baseline = read_valid_report(args.baseline, "--baseline")
    report = run_conformance(backends, functions, formats, check_names, level=args.cases,
                             device=args.device, seed=args.seed, timeout=args.timeout,
                             jobs=args.jobs, progress=sys.stderr.isatty())
    if backends:
        missing = [e for e in report["backends"] if not e["available"]]
        if missing:
            for e in missing:
                print(f"refact conform: backend {e['name']} is not available: {e['error']}",
                      file=sys.stderr)
    regressions = []
    if baseline is not None:
        from refact.conformance.report.diff import compare, records_expected

        # a baseline record this run should have made and did not is lost coverage: a regression
        expected = records_expected(report, functions, formats, check_names)
        against_baseline = compare(baseline, report, expected=expected)
        regressions = against_baseline.regressions
        report["baseline"] = {"path": os.path.basename(args.baseline), "regressions": len(regressions),
                              "regressed": [change.to_dict() for change in regressions],
                              "warnings": against_baseline.warnings}
        for warning in against_baseline.warnings:
            print(f"refact conform: warning: {warning}", file=sys.stderr)
    unwritten = {}
    write_reports(report, json=args.json, markdown=args.markdown, junit=args.junit, html=args.html,
                  failures=unwritten, markdown_full=args.markdown_full)
    for kind, error in unwritten.items():
        cannot_write(f"{REPORT_KINDS[kind]} report", getattr(args, kind), error)
    if not args.quiet:
        print(summary_table(report, details=args.details))
        if baseline is not None:
            from refact.conformance.report.diff import baseline_lines

            print("\n".join(baseline_lines(against_baseline, args.baseline)))
    fail_on = args.fail_on
    failed = any(fail_on.fails(r) for r in report["results"])
    if backends and any(not e["available"] for e in report["backends"]):
        failed |= "error" in fail_on.statuses  # a backend asked for by name that cannot run is an error
    # a regression counts as a fail, of the severity its record has now (none if it is gone)
    failed |= any(fail_on.fails({**(change.new or {}), "status": "fail"}) for change in regressions)
    if unwritten:
        return EXIT_UNWRITTEN
    return 1 if failed else 0

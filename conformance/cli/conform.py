"""``refact conform``: run the conformance checks and write the reports (JSON, Markdown, JUnit, HTML)."""

import argparse
import os
import sys

from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import count, names, non_negative_integer, read_valid_report, seconds
from refact.conformance.cases.sets import LEVELS
from refact.conformance.run.records import CHECKS, STATUSES
from refact.conformance.numbers.formats import FORMATS
from refact.conformance.run.runner import run_conformance
from refact.conformance.truth.catalog import NAMES


#: How each report is named in a message.
REPORT_KINDS = {"json": "JSON", "markdown": "Markdown", "junit": "JUnit", "html": "HTML"}

EXIT_STATUS = f"""\
exit status:
  0    no status named by --fail-on occurred
  1    one did, a backend named by --backend cannot run, or a regression against --baseline
  2    usage error: a bad option value, an unknown name, an unreadable or invalid --baseline
  {EXIT_UNWRITTEN}    a report could not be written (one line each; the others were written),
       whatever the results
  130  interrupted (Ctrl-C)
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
    parser.add_argument("--junit", metavar="FILE")
    parser.add_argument("--html", metavar="FILE")
    parser.add_argument("--baseline", metavar="OLD.json",
                        help="compare with an earlier report; a regression counts as 'fail'")
    parser.add_argument("--fail-on", default="fail,error", metavar="STATUSES",
                        help="statuses that make the exit status 1 (default: fail,error)")
    parser.add_argument("--quiet", action="store_true", help="no summary table")


def _selection(values, allowed, what):
    chosen = names(values)
    unknown = [v for v in chosen if allowed is not None and v not in allowed]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(unknown)}; expected one of {', '.join(allowed)}")
    return chosen or None


def summary_table(report):
    """The per-backend text table printed at the end of a run."""
    lines = []
    by_backend = {}
    for r in report["results"]:
        by_backend.setdefault(r["backend"], []).append(r)
    for entry in report["backends"]:
        name = entry["name"]
        if not entry["available"]:
            lines.append(f"{name}: unavailable ({entry['error']})")
            continue
        rows = by_backend.get(name, [])
        counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
        lines.append(f"{name} {entry['version']} on {entry['device']}: "
                     + ", ".join(f"{counts[s]} {s}" for s in STATUSES))
        for r in rows:
            if r["status"] in ("fail", "error", "convention"):
                ulp = "" if r["max_ulp"] is None else f" max {r['max_ulp']:.3g} ULP"
                conv = f" [{r['convention']['name']}]" if r.get("convention") else ""
                lines.append(f"  {r['status']:10} {r['function']:34} {r['format']:8} {r['check']:14}"
                             f"{ulp}{conv} {r['message'][:100]}")
    s = report["summary"]
    lines.append("summary: " + ", ".join(f"{s[k]} {k}" for k in STATUSES))
    return "\n".join(lines)


def run(args):
    from refact.conformance.report.writers import write_reports

    functions = _selection(args.function, NAMES, "function")
    formats = _selection(args.format, tuple(FORMATS), "format")
    check_names = _selection(args.check, CHECKS, "check")
    fail_on = set(_selection([args.fail_on], STATUSES, "status") or ())
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
        from refact.conformance.report.diff import compare

        regressions = compare(baseline, report).regressions
        report["baseline"] = {"path": os.path.basename(args.baseline), "regressions": len(regressions)}
    unwritten = {}
    write_reports(report, json=args.json, markdown=args.markdown, junit=args.junit, html=args.html,
                  failures=unwritten)
    for kind, error in unwritten.items():
        cannot_write(f"{REPORT_KINDS[kind]} report", getattr(args, kind), error)
    if not args.quiet:
        print(summary_table(report))
        if baseline is not None:
            print(f"{len(regressions)} regression(s) against {args.baseline}")
    occurred = {s for s in fail_on if report["summary"].get(s)}
    if backends and any(not e["available"] for e in report["backends"]):
        occurred.add("error")  # a backend asked for by name that cannot run is an error
    if regressions and "fail" in fail_on:
        occurred.add("fail")
    if unwritten:
        return EXIT_UNWRITTEN
    return 1 if occurred & fail_on else 0

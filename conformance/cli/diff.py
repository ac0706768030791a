"""``refact diff BEFORE AFTER``: regressions and improvements between two JSON reports."""

from refact.conformance.cli import UsageError
from refact.conformance.report.diff import compare, render_markdown, render_text
from refact.conformance.report.writers import InvalidReport, load_report, to_json_text, validate
from refact.conformance.truth.store import atomic_write_text


# --------------------------------------------------------------------------- command

def add_arguments(parser):
    parser.add_argument("old", metavar="OLD.json", help="the earlier report (refact.report/1)")
    parser.add_argument("new", metavar="NEW.json", help="the later report")
    parser.add_argument("--markdown", metavar="F", help="also write the diff as Markdown to F")
    parser.add_argument("--json", action="store_true", help="print the diff as JSON instead of a table")


def read_valid_report(path):
    """The report at ``path``, or UsageError saying why it cannot be compared."""
    try:
        report = load_report(path)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from error
    except ValueError as error:
        raise UsageError(f"{path} is not a JSON file: {error}") from error
    try:
        validate(report)
    except InvalidReport as error:
        raise UsageError(f"{path}: {error}") from error
    except ImportError as error:
        raise UsageError(str(error)) from error
    return report


def run(args):
    old_report, new_report = read_valid_report(args.old), read_valid_report(args.new)
    try:
        result = compare(old_report, new_report)
    except ValueError as error:
        raise UsageError(str(error)) from error
    if args.markdown:
        atomic_write_text(args.markdown, render_markdown(result, args.old, args.new))
    print(to_json_text(result.to_dict()) if args.json else render_text(result), end="")
    return 1 if result.regressions else 0

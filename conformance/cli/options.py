"""What the subcommands share in reading their options: value types checked at parse time,
names given more than once, and reading a report named on the command line.

The ``type=`` functions raise ``argparse.ArgumentTypeError``, so a bad value is a usage error
(exit status 2) naming the option and the value before anything runs: ``--jobs 0`` or
``--timeout nan`` would otherwise be accepted, or fail with a traceback minutes into a run.
"""

import argparse
import math
from typing import NamedTuple

from refact.conformance.cli import UsageError

__all__ = [
    "MAX_SECONDS", "integer_at_least", "count", "non_negative_integer", "seconds",
    "bit_range", "names", "FailOn", "fail_on_words", "read_valid_report",
]

#: The longest time limit accepted: waiting on a pipe takes at most 2**31 - 1 milliseconds
#: (about 24.8 days), and a longer limit would fail with OverflowError in the middle of a run.
MAX_SECONDS = 1e6


def integer_at_least(minimum):
    """A ``type=`` function: a whole number (decimal) no smaller than ``minimum``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer_at_least_{minimum}"
    return parse


#: A number of processes, points, shards: a whole number >= 1.
count = integer_at_least(1)
#: A number that may be 0 (``--sample 0``), or a seed (numpy's generators refuse negative ones).
non_negative_integer = integer_at_least(0)


def seconds(text):
    """A ``type=`` function: a duration in seconds, finite, above 0, at most MAX_SECONDS."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:  # false for NaN too
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds above 0 and at most {MAX_SECONDS:.0f}, got {text!r}")
    return value


def bit_range(text):
    """A ``type=`` function: ``LO:HI``, two bit patterns (hex ``0x...`` or decimal) with
    0 <= LO <= HI; whether they fit the format is checked once the format is known."""
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low, 0), int(high, 0)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or not 0 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(
            f"must be LO:HI, two bit patterns (hex 0x... or decimal) with 0 <= LO <= HI, got {text!r}")
    return bounds


def names(values):
    """The names of repeatable, comma-separated options (``--backend a,b --backend a``),
    each once, in the order first given."""
    return list(dict.fromkeys(item.strip() for text in values for item in text.split(",") if item.strip()))


class FailOn(NamedTuple):
    """What makes a run fail: records of these statuses, or of these severities."""
    statuses: frozenset
    severities: frozenset

    def fails(self, record):
        return record.get("status") in self.statuses or record.get("severity") in self.severities


def fail_on_words(statuses, severities):
    """A ``type=`` function: comma-separated words, each a status (of ``statuses``) or a
    severity (of ``severities``), read into a :class:`FailOn`; an empty text fails on
    nothing. The two vocabularies must not share a word, or it would be ambiguous."""
    if set(statuses) & set(severities):
        raise ValueError(f"statuses and severities share {sorted(set(statuses) & set(severities))}")

    def parse(text):
        words = names([text])
        unknown = [word for word in words if word not in statuses and word not in severities]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(map(repr, unknown))}; expected comma-separated statuses "
                f"({', '.join(statuses)}) or severities ({', '.join(severities)}), got {text!r}")
        return FailOn(frozenset(w for w in words if w in statuses), frozenset(w for w in words if w in severities))

    parse.__name__ = "statuses_or_severities"
    return parse


def _one_line(text):
    return " ".join(str(text).split())


def read_valid_report(path, label=""):
    """The ``refact.report/1`` report at ``path``, to be compared with another, or UsageError
    in one line naming the file: unreadable, not JSON, nested too deeply to read, not
    following the schema, or with two records for one backend/function/format/check.
    ``label`` (say ``"--baseline"``) is put before the path in the message."""
    # imported here: truth and golden need no report module
    from refact.conformance.report.diff import records_by_key
    from refact.conformance.report.writers import SCHEMA, InvalidReport, load_report, validate

    named = f"{label} {path}" if label else f"{path}"
    try:
        report = load_report(path)
    except OSError as error:
        raise UsageError(f"cannot read {named}: {_one_line(error.strerror or error)}") from None
    except RecursionError:
        raise UsageError(f"{named} is not a {SCHEMA} report: its JSON is nested too deeply") from None
    except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
        raise UsageError(f"{named} is not a JSON file: {_one_line(error)}") from None
    try:
        validate(report)
    except RecursionError:
        raise UsageError(f"{named} is not a {SCHEMA} report: its JSON is nested too deeply") from None
    except InvalidReport as error:
        # validate() lists one problem a line, after a heading line; the first few are enough
        header, *problems = [line.strip() for line in str(error).splitlines() if line.strip()]
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        raise UsageError(f"{named} is not a {SCHEMA} report: {_one_line(shown or header)}") from None
    except ImportError as error:  # jsonschema missing
        raise UsageError(_one_line(error)) from None
    try:
        records_by_key(report)  # what a diff needs beyond the schema: one record a key
    except ValueError as error:
        raise UsageError(f"{named} cannot be compared: {_one_line(error)}") from None
    return report

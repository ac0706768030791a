"""What every human-readable report says, computed once: Markdown, JUnit and HTML only
decide how it looks.

A report's records are read here into the pieces the writers show: the order of
findings (failures first, by severity, then by ULP), the overview matrix of one format
(functions by backend columns), the column of a record (``name[variant]`` when the
record has a variant), the anchors that link them, and the plain sentences of a
record's detail.
"""

import math
import re
from typing import NamedTuple

__all__ = [
    "STATUS_SEVERITY", "STATUS_LABEL", "SEVERITY_RANK", "CHECK_MARK", "TABLE_HEADER", "WORST_HEADER",
    "WORST_SHOWN", "format_number", "format_fraction", "format_value", "spell_control_characters",
    "column_name", "record_key", "group_key", "anchor", "record_anchor", "column_anchor",
    "class_points", "class_text", "finding_order", "is_finding", "findings", "records_by_column",
    "column_entries", "formats_of", "MatrixCell", "Matrix", "matrix", "Row", "table_row",
    "WorstRow", "worst_rows", "Detail", "record_detail", "summary_text", "provenance_text",
    "severity_counts", "convention_name", "status_counts",
]

# Worse statuses rank higher. skip ranks above pass because a skip is never a pass (the function
# or format is missing), and error above fail because a crash tells nothing about the numbers.
STATUS_SEVERITY = {"pass": 0, "convention": 1, "skip": 2, "fail": 3, "error": 4}
# Plain words, no emoji: a bad status is in capitals so it stands out in any viewer.
STATUS_LABEL = {"pass": "pass", "convention": "convention", "skip": "skip", "fail": "FAIL", "error": "ERROR"}
#: DESIGN.md's severities, worst first; a record without one (pass, skip, error) ranks after them.
SEVERITY_RANK = {"critical": 0, "major": 1, "minor": 2}
# The order findings are listed in: what is wrong with the numbers, then what could not be
# measured, then documented departures; passes and skips are not findings.
_FINDING_STATUS_RANK = {"fail": 0, "error": 1, "convention": 2, "skip": 3, "pass": 4}
#: A letter per check other than accuracy, marking a matrix cell where that check failed.
CHECK_MARK = {"special_values": "S", "properties": "P", "dtype": "D", "gradient": "G"}

TABLE_HEADER = ("function", "format", "check", "status", "severity", "max ULP", "classes",
                "correctly rounded", "budget ULP", "convention")
WORST_HEADER = ("input", "input (hex)", "output", "expected", "ULP", "class")
WORST_SHOWN = 5  # per record: enough to see the pattern, small enough for a job summary


# --------------------------------------------------------------------------- numbers as text

def format_number(value, digits=3):
    """A statistic for a table: 3 significant digits, "-" when not applicable."""
    if value is None:
        return "-"
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


def format_fraction(value):
    """A fraction as a percentage that never rounds up to a false 100%."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{100 * value:.1f}%"
    return ">99.9%" if text == "100.0%" and value < 1 else text


def format_value(value, elements=None):
    """An input or output exactly (shortest repr that round-trips), nested lists as [a, b].

    ``elements``: a list longer than this shows its first and last values and its length
    (a row of 100 logits in decimal and hex would fill a screen; the JSON has it whole)."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        items = [format_value(item, elements) for item in value]
        if elements is not None and len(items) > elements:
            head = max(1, elements - 2)
            items = items[:head] + [f"... {len(items) - head - 2} more ..."] + items[-2:]
        return "[" + ", ".join(items) + "]"
    return repr(value) if isinstance(value, float) else str(value)


# Control characters (an ANSI colour code in an exception message, say) are invisible in
# Markdown and HTML and forbidden in XML 1.0 even when escaped, where one would make the
# whole JUnit file unreadable; every format spells them out as \xNN instead.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def spell_control_characters(text):
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


# --------------------------------------------------------------------------- records

def column_name(record):
    """The backend column of a record or backend entry: ``torch``, or ``torch[compile]``
    for a record of a variant."""
    name = str(record.get("backend", record.get("name", "?")))
    variant = record.get("variant")
    return f"{name}[{variant}]" if variant else name


def record_key(record):
    return " / ".join([column_name(record)] + [str(record.get(field, "?")) for field in ("function", "format", "check")])


def group_key(record):
    """A record's backend column, function and format: the checks of one cell of the matrix."""
    return column_name(record), str(record.get("function", "?")), str(record.get("format", "?"))


def anchor(*words):
    """An HTML id from words: letters, digits, '-' and '_' only, so it needs no escaping."""
    return "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", str(word)) for word in words)


def column_anchor(column):
    return anchor("b", column)


def record_anchor(record):
    return anchor("r", *group_key(record))


def convention_name(record):
    convention = record.get("convention")
    return convention.get("name", "") if isinstance(convention, dict) else ""


def class_points(record):
    """Points in a failure class (NaN where a number was due, ...); undecided points are
    the oracle's, not the backend's, and are not counted."""
    return sum(count for name, count in (record.get("classes") or {}).items()
               if name != "undecided" and isinstance(count, int))


def class_text(record):
    return ", ".join(f"{name} {count}" for name, count in (record.get("classes") or {}).items() if count)


def _real(value):
    return value if isinstance(value, (int, float)) and not math.isnan(value) else None


def finding_order(record):
    """Sort key: fails, then errors, then conventions (then skips and passes); within a
    status by severity (critical, major, minor, none), then by max ULP and points in a
    failure class, largest first."""
    max_ulp = _real(record.get("max_ulp"))
    return (_FINDING_STATUS_RANK.get(record.get("status"), len(_FINDING_STATUS_RANK)),
            SEVERITY_RANK.get(record.get("severity"), len(SEVERITY_RANK)),
            -(max_ulp if max_ulp is not None else -1.0), -class_points(record))


def is_finding(record):
    return record.get("status") in ("fail", "error", "convention")


def findings(report):
    """Every failing, erroring or convention record, in :func:`finding_order`."""
    return sorted((record for record in report.get("results", []) if is_finding(record)), key=finding_order)


def column_entries(report):
    """Backend column -> its entry in report["backends"] (``{}`` when the report has none),
    in the order of the backends, then of the records."""
    entries = {}
    for entry in report.get("backends", []):
        entries.setdefault(column_name(entry), entry)
    by_name = {entry.get("name"): entry for entry in report.get("backends", [])}
    for record in report.get("results", []):
        entries.setdefault(column_name(record), by_name.get(record.get("backend"), {}))
    return entries


def records_by_column(report):
    """Backend column -> (its backend entry or {}, its records in report order)."""
    groups = {column: (entry, []) for column, entry in column_entries(report).items()}
    for record in report.get("results", []):
        groups[column_name(record)][1].append(record)
    return groups


def formats_of(report):
    """The formats the records are in, in the order of refact's format names, others after."""
    seen = list(dict.fromkeys(str(record.get("format", "?")) for record in report.get("results", [])))
    known = ("float64", "float32", "float16", "bfloat16")
    return [fmt for fmt in known if fmt in seen] + [fmt for fmt in seen if fmt not in known]


def status_counts(records):
    counts = dict.fromkeys(STATUS_SEVERITY, 0)
    for record in records:
        counts[record.get("status")] = counts.get(record.get("status"), 0) + 1
    return counts


def severity_counts(records):
    counts = dict.fromkeys(SEVERITY_RANK, 0)
    for record in records:
        if record.get("severity") in counts:
            counts[record["severity"]] += 1
    return counts


# --------------------------------------------------------------------------- overview matrix

class MatrixCell(NamedTuple):
    text: str        # the accuracy max ULP, "+Nc", "(conv.)", letters of other failing checks; "—" when skipped
    status: str      # the worst status of the cell's records
    severity: str    # the worst severity of the cell's records, or ""
    convention: bool
    target: str      # the anchor of the cell's backend/function/format record
    title: str       # one line per check, for a tooltip


class Matrix(NamedTuple):
    format: str
    functions: list
    columns: list
    cells: dict      # (function, column) -> MatrixCell; a missing pair has no record


def _cell(records):
    shown = [record for record in records if record.get("status") != "skip"]
    # a check the backend lacks (no autograd, say) does not grey out the checks it passed
    status = max((record.get("status") for record in shown or records), key=lambda s: STATUS_SEVERITY.get(s, 5))
    # the tooltip names the checks that did not pass (the cell's text is the accuracy's)
    title = "; ".join(f"{record.get('check')}: {record.get('status')}"
                      + (f" {format_number(record['max_ulp'])} ULP" if _real(record.get("max_ulp")) is not None else "")
                      for record in records if record.get("status") in ("fail", "error", "convention")) or "passed"
    target = record_anchor(records[0])
    if not shown:
        return MatrixCell("—", "skip", "", False, target, title)
    severities = [record.get("severity") for record in shown if record.get("severity") in SEVERITY_RANK]
    severity = min(severities, key=SEVERITY_RANK.get) if severities else ""
    convention = any(record.get("status") == "convention" or record.get("convention") for record in shown)
    accuracy = next((record for record in shown if record.get("check") == "accuracy"), None)
    words = []
    if accuracy is not None:
        if accuracy.get("status") == "error":
            words.append("error")
        else:
            words.append(format_number(accuracy.get("max_ulp")))
            if class_points(accuracy):
                words.append(f"+{class_points(accuracy)}c")
    marks = "".join(CHECK_MARK.get(record.get("check"), "?") for record in shown
                    if record.get("check") != "accuracy" and record.get("status") in ("fail", "error"))
    if marks:
        words.append(marks)
    if convention:
        words.append("(conv.)")
    return MatrixCell(" ".join(words) or status, status, severity, convention, target, title)


def matrix(report, fmt):
    """The overview of one format: a row per function, a column per backend (or variant)."""
    groups = {}
    for record in report.get("results", []):
        if str(record.get("format", "?")) == fmt:
            groups.setdefault((str(record.get("function", "?")), column_name(record)), []).append(record)
    functions = list(dict.fromkeys(function for function, _ in groups))
    columns = [column for column in column_entries(report) if any(key[1] == column for key in groups)]
    return Matrix(fmt, functions, columns, {key: _cell(records) for key, records in groups.items()})


# --------------------------------------------------------------------------- tables and details

class Row(NamedTuple):
    status: str
    severity: str
    cells: tuple     # the columns of TABLE_HEADER


def table_row(record):
    return Row(record.get("status", "?"), record.get("severity") or "", (
        str(record.get("function", "?")),
        str(record.get("format", "?")),
        str(record.get("check", "?")),
        STATUS_LABEL.get(record.get("status"), str(record.get("status", "?"))),
        record.get("severity") or "",
        format_number(record.get("max_ulp")),
        class_text(record),
        format_fraction(record.get("correctly_rounded")),
        format_number(record.get("budget_ulp")),
        convention_name(record),
    ))


class WorstRow(NamedTuple):
    """One of the worst points of a record, as text; the columns of WORST_HEADER."""
    input: str
    input_hex: str
    output: str
    expected: str
    ulp: str
    kind: str        # the failure class, "convention NAME", or the backend's error message


def _worst_kind(point):
    words = []
    if point.get("class"):
        words.append(str(point["class"]))
    if point.get("convention"):
        words.append(f"convention {point['convention']}")
    if point.get("error"):
        words.append(f"raised: {point['error']}")
    if point.get("property"):
        words.append(f"property {point['property']}")
    if isinstance(point.get("options"), dict) and point["options"]:
        words.append("with " + _options_text(point["options"]))
    return "; ".join(words)


def worst_rows(record, limit=WORST_SHOWN, elements=None):
    """The record's worst points as text; ``elements`` shortens long rows (:func:`format_value`)."""
    return [WorstRow(format_value(point.get("input"), elements), format_value(point.get("input_hex"), elements),
                     format_value(point.get("output"), elements), format_value(point.get("expected"), elements),
                     format_number(point.get("ulp")), _worst_kind(point))
            for point in (record.get("worst") or [])[:limit] if isinstance(point, dict)]


class Detail(NamedTuple):
    """What is known about one record beyond its table row."""
    title: str
    status: str
    severity: str
    lines: list          # message, statistics, failure classes, variant and options: plain sentences
    conventions: list    # (name, summary, reference URL or "", points, measured max ULP text)
    worst: list          # WorstRow


def _statistics_line(record):
    if record.get("max_ulp") is None:
        return ""
    parts = [f"max {format_number(record['max_ulp'])} ULP",
             f"p99 {format_number(record.get('p99_ulp'))}",
             f"mean {format_number(record.get('mean_ulp'))}"]
    if record.get("correctly_rounded") is not None:
        parts.append(f"correctly rounded {format_fraction(record['correctly_rounded'])}")
    if record.get("budget_ulp") is not None:
        parts.append(f"budget {format_number(record['budget_ulp'])} ULP")
    if record.get("points") is not None:
        parts.append(f"over {record['points']} points")
    return ", ".join(parts)


def _conventions(record):
    convention = record.get("convention")
    if not isinstance(convention, dict):
        return []
    entries = convention.get("all") or [convention]
    shown = []
    for entry in entries:
        # "all" lists names, points and distances; the summary and reference are the main one's
        main = entry.get("name") == convention.get("name")
        shown.append((str(entry.get("name", "?")),
                      str(convention.get("summary") or "") if main else "",
                      str(convention.get("reference") or "") if main else "",
                      entry.get("points"), format_number(entry.get("max_ulp"))))
    return shown


def _options_text(options):
    return ", ".join(f"{key}={value!r}" for key, value in options.items())


def _options_lines(options):
    """The options a record was judged with: a dict of the options of its calls, or a
    list of sub-results, one per option of the catalog (its values, status, figures)."""
    if isinstance(options, dict) and options:
        return ["options " + _options_text(options)]
    lines = []
    for entry in options if isinstance(options, list) else []:
        if not isinstance(entry, dict):
            continue
        values = ", ".join(format_value(value) for value in entry.get("values") or [])
        text = f"option {entry.get('option', '?')} ({values}): {entry.get('status', '?')}"
        if entry.get("severity"):
            text += f" ({entry['severity']})"
        if entry.get("max_ulp") is not None:
            text += f", max {format_number(entry['max_ulp'])} ULP"
        text += f" over {entry.get('points', '?')} points in {entry.get('calls', '?')} calls"
        if entry.get("message"):
            text += f"; {entry['message']}"
        lines.append(text)
    return lines


def record_detail(record, elements=None, limit=WORST_SHOWN):
    message = str(record.get("message") or "")
    classes = class_text(record)
    lines = [message, _statistics_line(record)]
    # the runner's message may already name the classes (as "flush_to_zero 1,079"): say them once
    named = [name for name, count in (record.get("classes") or {}).items() if count]
    if named and not all(name in message for name in named):
        lines.append(f"failure classes: {classes}")
    if record.get("variant"):
        lines.append(f"variant {record['variant']}")
    lines += _options_lines(record.get("options"))
    title = f"{record_key(record)}: {STATUS_LABEL.get(record.get('status'), record.get('status'))}"
    if record.get("severity"):
        title += f" ({record['severity']})"
    return Detail(title, str(record.get("status", "?")), record.get("severity") or "",
                  [line for line in lines if line], _conventions(record), worst_rows(record, limit, elements))


def summary_text(report):
    summary = report.get("summary", {})
    text = ", ".join(f"{summary.get(status, 0)} {status}" for status in ("pass", "fail", "convention", "error", "skip"))
    severities = severity_counts(report.get("results", []))
    if any(severities.values()):
        text += " (" + ", ".join(f"{count} {name}" for name, count in severities.items()) + ")"
    return text


def provenance_text(report):
    environment = report.get("environment", {})
    facts = [f"refact {report.get('refact_version', '?')}", f"created {report.get('created', '?')}",
             f"Python {environment.get('python', '?')}", str(environment.get("platform", "?"))]
    if environment.get("cpu"):
        facts.append(str(environment["cpu"]))
    facts.append(f"seed {environment.get('seed', '?')}")
    if environment.get("cases"):
        facts.append(f"cases {environment['cases']}")
    return ", ".join(facts)

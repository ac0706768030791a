"""The end of a run in a terminal, from the report dict: what each backend is, an overview
matrix per format, the worst findings one line each, and the summary counts.

The matrix has a row per function and a column per backend (``name[variant]`` for a
variant); its cell is the accuracy check's max ULP to 3 significant digits with a mark
of its severity (:data:`SEVERITY_MARK`), ``(c)`` for a documented convention, ``ERR``
for a backend that raised or crashed and ``—`` where the check was skipped or not made.
:func:`markdown_matrix` writes the same cells as a Markdown table (the README's).

Every line fits the terminal's width: a matrix too wide for it is split into blocks of
whole columns, and a longer line is cut at a space, never inside a word or number,
ending in an ellipsis.
"""

import math
import shutil
import textwrap

from refact.conformance.report.diff import backend_column
from refact.conformance.run.records import SEVERITIES, STATUSES

__all__ = [
    "SEVERITY_MARK", "LEGEND", "FINDINGS_SHOWN", "NOT_MEASURED", "ELLIPSIS", "NOT_A_TERMINAL_WIDTH",
    "terminal_width",
    "fit", "matrix_cell", "matrix_cells", "render_matrix", "markdown_matrix", "findings",
    "finding_line", "render_findings", "summary_line", "render_summary",
]

#: A record's severity as a mark after its cell or at the start of its finding line.
SEVERITY_MARK = {"critical": "!!", "major": "!", "minor": "~"}
LEGEND = ("cell: max ULP of the accuracy check outside failure classes; !! critical, ! major, ~ minor; "
          "(c) convention; — skipped or not offered; ERR error")
#: Findings listed without --details.
FINDINGS_SHOWN = 10
NOT_MEASURED = "—"
ELLIPSIS = "…"
#: Significant digits that tell any two values of a format apart.
_DIGITS = {"float64": 17, "float32": 9, "float16": 5, "bfloat16": 4}
#: Elements of a row shown in a finding (the first ones, a count of those left out, the last).
_ELEMENTS_SHOWN = 3
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
# fails first; an error says nothing of the numbers; a convention is documented
_STATUS_RANK = {"fail": 0, "error": 1, "convention": 2}
_CRITICAL_FIRST = ("spurious_nan", "spurious_inf", "missing_inf", "missing_nan",
                   "premature_underflow", "premature_overflow")


#: Columns when the output is not a terminal and COLUMNS is not set: a CI log, which has
#: no width of its own, so lines are cut only where they would be hard to read anyway.
NOT_A_TERMINAL_WIDTH = 160


def terminal_width():
    """Columns of the terminal: COLUMNS if set, else the terminal's, else
    :data:`NOT_A_TERMINAL_WIDTH`."""
    return shutil.get_terminal_size((NOT_A_TERMINAL_WIDTH, 24)).columns


def fit(line, width):
    """``line`` as it is if it fits in ``width`` characters, else cut at its last space
    that leaves room for an ellipsis (a word is never cut, unless the first alone is
    wider than the line)."""
    if len(line) <= width:
        return line
    cut = line.rfind(" ", 0, width - len(ELLIPSIS))
    if cut <= 0:
        return line[:max(0, width - len(ELLIPSIS))] + ELLIPSIS
    return line[:cut].rstrip() + " " + ELLIPSIS


def _real(value):
    return value if isinstance(value, (int, float)) and not math.isnan(value) else None


def _number(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


# --------------------------------------------------------------------------- the matrix

def matrix_cell(record):
    """The cell of one accuracy record (None: no record, the check was not made)."""
    if record is None or record.get("status") == "skip":
        return NOT_MEASURED
    if record.get("status") == "error":
        return "ERR"
    words = [_number(_real(record.get("max_ulp")))]
    mark = SEVERITY_MARK.get(record.get("severity"))
    if mark:
        words.append(mark)
    if record.get("status") == "convention":
        words.append("(c)")
    return " ".join(words)


def _columns(report):
    """The backend columns, in the order of report["backends"], then of the records."""
    columns = [backend_column(entry.get("name"), entry.get("variant")) for entry in report.get("backends", [])]
    columns += [backend_column(r.get("backend"), r.get("variant")) for r in report.get("results", [])]
    return list(dict.fromkeys(columns))


def matrix_cells(report, fmt):
    """``(functions, columns, {(function, column): cell})`` of format ``fmt``'s accuracy
    records; functions in the order of the records, columns of every backend with a
    record in ``fmt``. Empty lists when the report has no accuracy record in ``fmt``."""
    records = {}
    for record in report.get("results", []):
        if record.get("format") == fmt and record.get("check") == "accuracy":
            records[(record.get("function"), backend_column(record.get("backend"), record.get("variant")))] = record
    functions = list(dict.fromkeys(function for function, _ in records))
    used = {column for _, column in records}
    columns = [column for column in _columns(report) if column in used]
    cells = {(function, column): matrix_cell(records.get((function, column)))
             for function in functions for column in columns}
    return functions, columns, cells


def render_matrix(report, fmt, width=None):
    """The matrix of ``fmt`` as text lines no wider than ``width``: when all columns do
    not fit, blocks of as many whole columns as fit, each repeating the function column."""
    width = terminal_width() if width is None else width
    functions, columns, cells = matrix_cells(report, fmt)
    if not functions:
        return []
    title = f"{fmt} accuracy"
    first = max(len(title), *(len(f) for f in functions))
    sizes = {c: max(len(c), *(len(cells[(f, c)]) for f in functions)) for c in columns}
    blocks, block, used = [], [], first
    for column in columns:
        if block and used + 2 + sizes[column] > width:
            blocks.append(block)
            block, used = [], first
        block.append(column)
        used += 2 + sizes[column]
    blocks.append(block)
    lines = []
    for block in blocks:
        if lines:
            lines.append("")
        rows = [(title, block)] + [(f, [cells[(f, c)] for c in block]) for f in functions]
        for name, values in rows:
            text = name.ljust(first) + "".join(f"  {v:>{sizes[c]}}" for v, c in zip(values, block))
            lines.append(fit(text.rstrip(), width))
    return lines


def _markdown_cell(text):
    # a single "~" is strikethrough on GitHub; "|" ends the cell
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("~", "\\~")


def markdown_matrix(report, fmt):
    """The matrix of ``fmt`` as a Markdown table: the cells of :func:`render_matrix`."""
    functions, columns, cells = matrix_cells(report, fmt)
    if not functions:
        return []
    lines = ["| " + " | ".join([f"{fmt} accuracy", *map(_markdown_cell, columns)]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for function in functions:
        lines.append("| " + " | ".join([_markdown_cell(function),
                                         *(_markdown_cell(cells[(function, c)]) for c in columns)]) + " |")
    return lines


# --------------------------------------------------------------------------- findings

def _order(record):
    """Critical first, then major, minor and none; within each, fails before errors
    before conventions, then the largest max ULP."""
    ulp = _real(record.get("max_ulp"))
    return (_SEVERITY_RANK.get(record.get("severity"), len(SEVERITIES)),
            _STATUS_RANK.get(record.get("status"), len(_STATUS_RANK)),
            -(ulp if ulp is not None else -1.0))


def findings(report):
    """The records that are not a pass or a skip, worst first (:func:`_order`)."""
    return sorted((r for r in report.get("results", []) if r.get("status") in _STATUS_RANK), key=_order)


def _telling_point(record):
    """The worst point that shows the record best: an example of a critical class (a NaN
    where a number was due, ...), else the largest ULP error, else the first kept."""
    points = [p for p in record.get("worst") or [] if isinstance(p, dict)]
    for name in _CRITICAL_FIRST:
        for point in points:
            if point.get("class") == name:
                return point
    measured = [p for p in points if _real(p.get("ulp")) is not None]
    if measured:
        return max(measured, key=lambda p: p["ulp"])
    return points[0] if points else None


def _value(value, fmt):
    if isinstance(value, (list, tuple)):
        items = [_value(v, fmt) for v in value]
        if len(items) > _ELEMENTS_SHOWN:
            # a row of 100 logits would hide the output and the truth: the JSON has it whole
            items = items[:_ELEMENTS_SHOWN - 1] + [f"{ELLIPSIS}{len(items) - _ELEMENTS_SHOWN} more", items[-1]]
        return "[" + ", ".join(items) + "]"
    if isinstance(value, float):
        return _number(value, _DIGITS.get(fmt, 17))
    return str(value)


def _arguments(inputs, fmt):
    """A point's arguments: ``x`` alone for one argument, ``(x, target)`` for more."""
    if isinstance(inputs, (list, tuple)):
        if len(inputs) == 1:
            return _value(inputs[0], fmt)
        return "(" + ", ".join(_value(v, fmt) for v in inputs) + ")"
    return _value(inputs, fmt)


def finding_line(record, sizes=None):
    """One finding: severity mark, backend column, function, format, check, its max ULP
    (``(c)``: under a convention), and its telling point: its failure class, if any, the
    input, the output and the truth. ``sizes`` pads the first fields to line up."""
    sizes = sizes or {}
    fmt = record.get("format")
    fields = [SEVERITY_MARK.get(record.get("severity"), ""),
              backend_column(record.get("backend"), record.get("variant")),
              str(record.get("function")), str(fmt), str(record.get("check"))]
    fields = [f.ljust(sizes.get(i, 0)) for i, f in enumerate(fields)]
    if record.get("status") == "error":
        return "  ".join(fields + ["ERR", " ".join(str(record.get("message") or "").split())])
    how = f"{_number(_real(record.get('max_ulp')))} ULP"
    if record.get("status") == "convention":
        how += " (c)"
    words = fields + [how]
    point = _telling_point(record)
    if point is not None:
        where = f"at {_arguments(point.get('input'), fmt)} -> {_value(point.get('output'), fmt)}"
        if point.get("expected") is not None:
            where += f", truth {_value(point.get('expected'), fmt)}"
        words.append(f"{point['class']} {where}" if point.get("class") else where)
    return "  ".join(words)


def render_findings(report, width=None, limit=FINDINGS_SHOWN):
    """The worst ``limit`` findings (every one for None), a line each, no wider than
    ``width``; a last line says how many more there are."""
    width = terminal_width() if width is None else width
    every = findings(report)
    if not every:
        return []
    shown = every if limit is None else every[:limit]
    columns = [[SEVERITY_MARK.get(r.get("severity"), ""), backend_column(r.get("backend"), r.get("variant")),
                str(r.get("function")), str(r.get("format")), str(r.get("check"))] for r in shown]
    sizes = {i: max((len(fields[i]) for fields in columns), default=0) for i in range(5)}
    title = f"worst findings ({len(shown)} of {len(every)}):" if len(shown) < len(every) else "findings:"
    lines = [title] + [fit(finding_line(r, sizes), width) for r in shown]
    if len(shown) < len(every):
        lines.append(fit(f"... {len(every) - len(shown)} more: --details lists every one, "
                         "the JSON/HTML report has each point", width))
    return lines


# --------------------------------------------------------------------------- the whole summary

def _backend_line(entry, records):
    name = backend_column(entry.get("name"), entry.get("variant"))
    if not entry.get("available", True):
        return f"{name}: unavailable ({' '.join(str(entry.get('error')).split())})"
    counts = {s: sum(r.get("status") == s for r in records) for s in STATUSES}
    return (f"{name} {entry.get('version') or '-'} on {entry.get('device') or '-'}: "
            + ", ".join(f"{counts[s]} {s}" for s in STATUSES))


def summary_line(report):
    """``summary: 2 pass, 3 fail, ... (0 critical, 3 major, 0 minor)``."""
    summary = report.get("summary", {})
    severities = {name: sum(r.get("severity") == name for r in report.get("results", [])) for name in SEVERITIES}
    return ("summary: " + ", ".join(f"{summary.get(s, 0)} {s}" for s in STATUSES)
            + " (" + ", ".join(f"{severities[s]} {s}" for s in SEVERITIES) + ")")


def _formats(report):
    seen = list(dict.fromkeys(r.get("format") for r in report.get("results", [])))
    known = [fmt for fmt in _DIGITS if fmt in seen]
    return known + [fmt for fmt in seen if fmt not in known]


def _wrapped(text, width):
    """A sentence that must be read whole (the legend, the counts) on as many lines as
    it takes, continued lines indented."""
    return textwrap.wrap(text, width=max(width, 20), subsequent_indent="  ", break_long_words=False,
                         break_on_hyphens=False)


def render_summary(report, width=None, details=False):
    """The text printed at the end of ``refact conform``: a line per backend, the matrix
    of each format and its legend, the worst findings (every one with ``details``), and
    the summary counts."""
    width = terminal_width() if width is None else width
    lines = []
    for entry in report.get("backends", []):
        column = backend_column(entry.get("name"), entry.get("variant"))
        records = [r for r in report.get("results", [])
                   if backend_column(r.get("backend"), r.get("variant")) == column]
        lines += _wrapped(_backend_line(entry, records), width)
    matrices = [render_matrix(report, fmt, width) for fmt in _formats(report)]
    for matrix in filter(None, matrices):
        lines += [""] + matrix
    if any(matrices):
        lines += _wrapped(LEGEND, width)
    found = render_findings(report, width, limit=None if details else FINDINGS_SHOWN)
    if found:
        lines += [""] + found
    lines += [""] + _wrapped(summary_line(report), width)
    return lines

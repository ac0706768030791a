"""Write a conformance report as JSON, Markdown, JUnit XML and HTML; read it back; validate it.

The runner builds one report dict following the ``refact.report/1`` contract (DESIGN.md,
"Report contract"; the JSON Schema ships as ``data/report.schema.json``). This module only
renders it, so every format shows the same records in the same words:

- JSON: the contract itself, what a CI parses and what ``refact diff`` compares.
- Markdown: a CI job summary (GitHub's ``$GITHUB_STEP_SUMMARY``): counts, a table per backend
  with failures and errors first, then the worst inputs of every failing record.
- JUnit XML: one testcase per backend/function/format/check, for a CI's test-report viewer.
- HTML: one self-contained file, with the tables and SVG plots drawn here (no script, no
  external CSS, font or image).

Non-finite numbers. JSON has no NaN or infinity, yet a report is full of them: -inf is a
common input, NaN a common wrong output. Every non-finite float is written as the string
``"nan"``, ``"inf"`` or ``"-inf"``; the schema allows those strings wherever a real number is
allowed. ``load_report`` turns them back into floats in the fields that hold numbers, and only
there, so a message that reads "inf" stays a string. ``-0.0`` needs nothing: JSON keeps its sign.

Every write is atomic (a temporary file in the same directory, fsync, ``os.replace``): after a
crash the previous report is still whole, never half-written.
"""

import html as _html
import importlib.resources
import json as _json
import math
import re
import xml.etree.ElementTree as ET
from typing import NamedTuple

from refact.conformance.run.records import SCHEMA
from refact.conformance.truth.store import atomic_write_text

__all__ = [
    "SCHEMA", "STATUS_SEVERITY", "InvalidReport",
    "to_plain_json", "from_plain_json", "to_json_text", "load_report", "load_schema", "validate",
    "render_markdown", "render_junit", "render_html", "markdown_table", "format_number",
    "write_json", "write_markdown", "write_junit", "write_html", "write_reports",
    "atomic_write_text", "escape_markdown",
]


# Worse statuses rank higher. skip ranks above pass because a skip is never a pass (the function
# or format is missing), and error above fail because a crash tells nothing about the numbers.
STATUS_SEVERITY = {"pass": 0, "convention": 1, "skip": 2, "fail": 3, "error": 4}
# Plain words, no emoji: a bad status is in capitals so it stands out in any viewer.
STATUS_LABEL = {"pass": "pass", "convention": "convention", "skip": "skip", "fail": "FAIL", "error": "ERROR"}


NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# The fields that hold real numbers (the schema's "real_or_null" and "value"): only these are
# decoded from "nan"/"inf"/"-inf" when a report is read back.
_REAL_FIELDS_OF_RESULT = ("max_ulp", "p99_ulp", "mean_ulp", "budget_ulp")
_REAL_FIELDS_OF_WORST = ("input", "output", "expected", "ulp")
_REAL_FIELDS_OF_CONVENTION = ("max_ulp",)
_REAL_FIELDS_OF_CURVE = ("x", "y", "dy")
_REAL_FIELDS_OF_SERIES = ("x", "ulp", "budget_ulp")

TABLE_HEADER = ("function", "format", "check", "status", "max ULP", "p99 ULP",
                "correctly rounded", "budget ULP", "convention")
WORST_HEADER = ("input", "input (hex)", "output", "expected", "ULP")
WORST_SHOWN = 5  # per failing record: enough to see the pattern, small enough for a job summary


# --------------------------------------------------------------------------- JSON

def _encode_float(value):
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def to_plain_json(value):
    """``value`` as strict JSON data: non-finite floats as strings, tuples as lists.

    numpy scalars and arrays become Python numbers and lists through their ``tolist``,
    so a runner may leave them in the report without this module importing numpy.
    """
    if isinstance(value, dict):
        return {key: to_plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain_json(item) for item in value]
    if isinstance(value, float):
        return _encode_float(float(value))
    if value is None or isinstance(value, (str, int)):
        return value
    if hasattr(value, "tolist"):
        return to_plain_json(value.tolist())
    raise TypeError(f"a report cannot hold a {type(value).__name__}: {value!r}")


def _json_lines(value, indent):
    # Objects and lists of objects get one member per line; lists of numbers stay on one
    # line, so a series of thousands of points does not become thousands of lines.
    inner = indent + "  "
    if isinstance(value, dict) and value:
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"a report's keys must be strings, not {key!r}")
        members = (f"{inner}{_json.dumps(key, ensure_ascii=False)}: {_json_lines(item, inner)}"
                   for key, item in value.items())
        return "{\n" + ",\n".join(members) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        return "[\n" + ",\n".join(inner + _json_lines(item, inner) for item in value) + "\n" + indent + "]"
    return _json.dumps(value, ensure_ascii=False, allow_nan=False)


def to_json_text(report):
    """The report as JSON text, non-finite floats written as "nan", "inf", "-inf"."""
    return _json_lines(to_plain_json(report), "") + "\n"


def _decode_reals(value):
    if isinstance(value, str):
        return NONFINITE_TEXT.get(value, value)
    if isinstance(value, list):
        return [_decode_reals(item) for item in value]
    return value


def _decode_fields(obj, names):
    if isinstance(obj, dict):
        for name in names:
            if name in obj:
                obj[name] = _decode_reals(obj[name])


def _dicts_in(value):
    # Tolerant on purpose: a malformed file must reach validate() and its clear message.
    if isinstance(value, dict):
        value = list(value.values())
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def from_plain_json(data):
    """Turn "nan", "inf", "-inf" back into floats in the report's numeric fields (in place)."""
    if not isinstance(data, dict):
        return data
    for result in _dicts_in(data.get("results")):
        _decode_fields(result, _REAL_FIELDS_OF_RESULT)
        _decode_fields(result.get("convention"), _REAL_FIELDS_OF_CONVENTION)
        for point in _dicts_in(result.get("worst")):
            _decode_fields(point, _REAL_FIELDS_OF_WORST)
    for curve in _dicts_in(data.get("curves")):
        _decode_fields(curve, _REAL_FIELDS_OF_CURVE)
    for series in _dicts_in(data.get("series")):
        _decode_fields(series, _REAL_FIELDS_OF_SERIES)
    return data


def load_report(path):
    """Read a JSON report written by ``write_json``, with its non-finite numbers as floats.

    Raises OSError if the file cannot be read and ValueError if it is not JSON; it does not
    validate (call ``validate``).
    """
    with open(path, encoding="utf-8") as file:
        return from_plain_json(_json.load(file))


# --------------------------------------------------------------------------- validation

class InvalidReport(ValueError):
    """The report does not follow the refact.report/1 schema."""


def load_schema():
    """The JSON Schema of refact.report/1, as shipped with the package."""
    # joinpath one part at a time: Python 3.10's resources take a single part per call.
    schema = importlib.resources.files("refact.conformance").joinpath("data").joinpath("report.schema.json")
    return _json.loads(schema.read_text(encoding="utf-8"))


def validate(report):
    """Raise InvalidReport, listing what is wrong, unless ``report`` follows the schema.

    The report is checked in its JSON form, so a NaN in it is checked as the string "nan".
    Needs the jsonschema package (the ``conformance`` extra); imported here only, because
    writing reports does not need it.
    """
    try:
        import jsonschema
    except ImportError as missing:
        raise ImportError("validating a report needs the jsonschema package: "
                          "pip install 'refact-numerics[conformance]'") from missing
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(to_plain_json(report)), key=lambda error: error.json_path)
    if errors:
        shown = "\n".join(f"  {error.json_path}: {error.message}" for error in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise InvalidReport(f"the report does not follow {SCHEMA}:\n{shown}{more}")


# --------------------------------------------------------------------------- atomic writing



# --------------------------------------------------------------------------- shared model
# What the tables and failure sections say is computed here once; Markdown, JUnit and HTML
# only decide how it looks.

def format_number(value, digits=3):
    """A statistic for a table: 3 significant digits, "-" when not applicable."""
    if value is None:
        return "-"
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return _encode_float(value)
    return f"{value:.{digits}g}"


def format_fraction(value):
    """A fraction as a percentage that never rounds up to a false 100%."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    text = f"{100 * value:.1f}%"
    return ">99.9%" if text == "100.0%" and value < 1 else text


def format_value(value):
    """An input or output exactly (shortest repr that round-trips), nested lists as [a, b]."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(item) for item in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)


class Row(NamedTuple):
    status: str
    cells: tuple


class BackendTable(NamedTuple):
    title: str
    note: str
    rows: list


class WorstRow(NamedTuple):
    """One of the worst points of a record, as text; the columns of WORST_HEADER."""
    input: str
    input_hex: str
    output: str
    expected: str
    ulp: str


class Detail(NamedTuple):
    """What is known about one record beyond its table row."""
    title: str
    status: str
    lines: list   # message, statistics, failure classes, convention: plain sentences
    worst: list   # WorstRow


def _record_key(record):
    return " / ".join(str(record.get(field, "?")) for field in ("backend", "function", "format", "check"))


def convention_name(record):
    convention = record.get("convention")
    return convention.get("name", "") if isinstance(convention, dict) else ""


def table_row(record):
    return Row(record.get("status", "?"), (
        str(record.get("function", "?")),
        str(record.get("format", "?")),
        str(record.get("check", "?")),
        STATUS_LABEL.get(record.get("status"), str(record.get("status", "?"))),
        format_number(record.get("max_ulp")),
        format_number(record.get("p99_ulp")),
        format_fraction(record.get("correctly_rounded")),
        format_number(record.get("budget_ulp")),
        convention_name(record),
    ))


def _severity(record):
    return STATUS_SEVERITY.get(record.get("status"), len(STATUS_SEVERITY))


def records_by_backend(report):
    """Backend name -> (its entry in report["backends"] or {}, its records in report order)."""
    groups = {entry.get("name"): (entry, []) for entry in report.get("backends", [])}
    for record in report.get("results", []):
        groups.setdefault(record.get("backend"), ({}, []))[1].append(record)
    return groups


def _backend_title(name, entry):
    words = [str(name)]
    if entry.get("version"):
        words.append(str(entry["version"]))
    if entry.get("device"):
        words.append(f"on {entry['device']}")
    return " ".join(words)


def _backend_note(entry):
    if entry.get("available", True):
        return ""
    return f"not available: {entry.get('error') or 'no reason given'}"


def backend_tables(report):
    """One table per backend, failures and errors first (the sort keeps report order within a status)."""
    tables = []
    for name, (entry, records) in records_by_backend(report).items():
        ordered = sorted(records, key=lambda record: -_severity(record))
        tables.append(BackendTable(_backend_title(name, entry), _backend_note(entry),
                                   [table_row(record) for record in ordered]))
    return tables


def _statistics_line(record):
    if record.get("max_ulp") is None:
        return ""
    parts = [f"max {format_number(record['max_ulp'])} ULP",
             f"p99 {format_number(record.get('p99_ulp'))}",
             f"mean {format_number(record.get('mean_ulp'))}"]
    if record.get("budget_ulp") is not None:
        parts.append(f"budget {format_number(record['budget_ulp'])} ULP")
    if record.get("points") is not None:
        parts.append(f"over {record['points']} points")
    return ", ".join(parts)


def _classes_line(record):
    classes = record.get("classes") or {}
    counted = [f"{name} {count}" for name, count in classes.items() if count]
    return "failure classes: " + ", ".join(counted) if counted else ""


def _convention_line(record):
    convention = record.get("convention")
    if not isinstance(convention, dict):
        return ""
    text = f"convention {convention.get('name', '?')}"
    if convention.get("summary"):
        text += f": {convention['summary']}"
    if convention.get("reference"):
        text += f" (see {convention['reference']})"
    if convention.get("max_ulp") is not None:
        text += f"; measured {format_number(convention['max_ulp'])} ULP from the truth"
    return text


def worst_rows(record, limit=WORST_SHOWN):
    return [WorstRow(format_value(point.get("input")), format_value(point.get("input_hex")),
                     format_value(point.get("output")), format_value(point.get("expected")),
                     format_number(point.get("ulp")))
            for point in (record.get("worst") or [])[:limit]]


def record_detail(record):
    lines = [record.get("message") or "", _statistics_line(record), _classes_line(record),
             _convention_line(record)]
    title = f"{_record_key(record)}: {STATUS_LABEL.get(record.get('status'), record.get('status'))}"
    return Detail(title, record.get("status", "?"), [line for line in lines if line], worst_rows(record))


def failure_details(report):
    """Details of every failing or erroring record, worst status first."""
    failing = [record for record in report.get("results", []) if record.get("status") in ("fail", "error")]
    return [record_detail(record) for record in sorted(failing, key=lambda record: -_severity(record))]


def summary_text(report):
    summary = report.get("summary", {})
    return ", ".join(f"{summary.get(status, 0)} {status}" for status in ("pass", "fail", "convention", "error", "skip"))


def provenance_text(report):
    environment = report.get("environment", {})
    facts = [f"refact {report.get('refact_version', '?')}", f"created {report.get('created', '?')}",
             f"Python {environment.get('python', '?')}", str(environment.get("platform", "?"))]
    if environment.get("cpu"):
        facts.append(str(environment["cpu"]))
    facts.append(f"seed {environment.get('seed', '?')}")
    return ", ".join(facts)


# --------------------------------------------------------------------------- text safety

# Control characters (an ANSI colour code in an exception message, say) are invisible in
# Markdown and HTML and forbidden in XML 1.0 even when escaped, where one would make the
# whole JUnit file unreadable; every format spells them out as \xNN instead.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def spell_control_characters(text):
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", str(text))


def _h(text):
    """Text for HTML, in an element or an attribute."""
    return _html.escape(spell_control_characters(text))


# --------------------------------------------------------------------------- Markdown

_MARKDOWN_ESCAPED = re.compile(r"([\\`*_\[\]|~])")


def escape_markdown(text):
    """``text`` as inert Markdown: it renders as itself and cannot break a table row.

    Whitespace runs (newlines included) become one space, since a table cell is one line;
    < and & become entities, so no HTML tag or entity gets through (> alone is harmless
    where this text goes: never at the start of a line); the rest is backslash-escaped.
    """
    text = " ".join(spell_control_characters(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;")
    return _MARKDOWN_ESCAPED.sub(r"\\\1", text)


def _markdown_line(escaped_cells):
    return "| " + " | ".join(escaped_cells) + " |"


def markdown_table(header, rows):
    """The header, its rule, and rows of plain-text cells, all escaped."""
    lines = [_markdown_line(escape_markdown(cell) for cell in header), "|" + "---|" * len(header)]
    return lines + [_markdown_line(escape_markdown(cell) for cell in row) for row in rows]


def _markdown_backend_row(row):
    # The bad statuses in bold; the escaped text sits inside the ** markers.
    cells = [escape_markdown(cell) for cell in row.cells]
    if STATUS_SEVERITY.get(row.status, len(STATUS_SEVERITY)) >= STATUS_SEVERITY["fail"]:
        cells[TABLE_HEADER.index("status")] = f"**{cells[TABLE_HEADER.index('status')]}**"
    return _markdown_line(cells)


def render_markdown(report):
    lines = ["# refact conformance report", "",
             f"**{escape_markdown(summary_text(report))}**", "",
             escape_markdown(provenance_text(report)), ""]
    for table in backend_tables(report):
        lines += [f"## {escape_markdown(table.title)}", ""]
        if table.note:
            lines += [escape_markdown(table.note), ""]
        if table.rows:
            lines += markdown_table(TABLE_HEADER, [])
            lines += [_markdown_backend_row(row) for row in table.rows]
            lines.append("")
    details = failure_details(report)
    if details:
        lines += ["## Worst cases of failures and errors", ""]
        for detail in details:
            lines += [f"### {escape_markdown(detail.title)}", ""]
            lines += [f"- {escape_markdown(line)}" for line in detail.lines]
            lines.append("")
            if detail.worst:
                lines += markdown_table(WORST_HEADER, detail.worst) + [""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- JUnit XML

def _xml_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return spell_control_characters(value)


def _detail_text(detail):
    lines = list(detail.lines)
    if detail.worst:
        lines.append("worst inputs:")
        lines += [f"  input {row.input} (hex {row.input_hex}) -> output {row.output}, "
                  f"expected {row.expected}, {row.ulp} ULP" for row in detail.worst]
    return "\n".join(lines)


def _first_worst_summary(detail):
    if not detail.worst:
        return ""
    row = detail.worst[0]
    return f"worst: input {row.input_hex} -> {row.output}, expected {row.expected} ({row.ulp} ULP)"


def _junit_outcome(testcase, record):
    status = record.get("status")
    detail = record_detail(record)
    if status == "fail":
        message = "; ".join(part for part in (record.get("message"), _first_worst_summary(detail)) if part)
        element = ET.SubElement(testcase, "failure", message=_xml_text(message or "fail"), type="fail")
        element.text = _xml_text(_detail_text(detail))
    elif status == "error":
        element = ET.SubElement(testcase, "error", message=_xml_text(record.get("message") or "error"),
                                type="error")
        element.text = _xml_text(_detail_text(detail))
    elif status == "skip":
        ET.SubElement(testcase, "skipped", message=_xml_text(record.get("message") or "skipped"))
    elif status == "convention":
        ET.SubElement(testcase, "system-out").text = _xml_text(_detail_text(detail))


def _junit_counts(records):
    statuses = [record.get("status") for record in records]
    return {"tests": str(len(records)), "failures": str(statuses.count("fail")),
            "errors": str(statuses.count("error")), "skipped": str(statuses.count("skip"))}


def _junit_suite(parent, name, entry, records, timestamp):
    suite = ET.SubElement(parent, "testsuite", name=_xml_text(f"refact.{name}"), **_junit_counts(records))
    if timestamp:
        suite.set("timestamp", _xml_text(timestamp))
    known = [key for key in ("version", "device", "available", "error") if entry.get(key) is not None]
    if known:  # some JUnit schemas reject an empty <properties>
        properties = ET.SubElement(suite, "properties")
        for key in known:
            ET.SubElement(properties, "property", name=key, value=_xml_text(entry[key]))
    for record in records:
        testcase = ET.SubElement(suite, "testcase",
                                 classname=_xml_text(f"refact.{name}.{record.get('function', '?')}"),
                                 name=_xml_text(f"{record.get('format', '?')}.{record.get('check', '?')}"))
        _junit_outcome(testcase, record)


def render_junit(report):
    root = ET.Element("testsuites", name="refact conformance", **_junit_counts(report.get("results", [])))
    for name, (entry, records) in records_by_backend(report).items():
        _junit_suite(root, name, entry, records, report.get("created"))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


# --------------------------------------------------------------------------- SVG plots

PLOT_WIDTH, PLOT_HEIGHT = 520, 300
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 64, 14, 42, 44  # room for title and legend above
MAX_PLOT_POINTS = 2000   # per plot: keeps a report with many series a few megabytes at most
SYMLOG_ABOVE = 100.0     # data reaching beyond this magnitude gets a symmetric-log axis
PLOT_COLORS = ("#1f5fbf", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#555555")


def _symlog(value):
    # log10(1 + |v|) with the sign of v: linear near 0, logarithmic far out, defined at 0
    # (a ULP error of 0 is common) and for negative inputs.
    return math.copysign(math.log10(1 + abs(value)), value)


class Scale(NamedTuple):
    low: float
    high: float
    symlog: bool

    def transform(self, value):
        return _symlog(value) if self.symlog else value

    def fraction(self, value):
        low, high = self.transform(self.low), self.transform(self.high)
        return (self.transform(value) - low) / (high - low)


def _finite(values):
    return [value for value in values if isinstance(value, (int, float)) and math.isfinite(value)]


def choose_scale(values, include=()):
    finite = _finite(list(values) + list(include))
    if not finite:
        return Scale(0.0, 1.0, False)
    low, high = float(min(finite)), float(max(finite))
    if low == high:
        pad = abs(low) / 2 or 1.0
        low, high = low - pad, high + pad
    return Scale(low, high, max(abs(low), abs(high)) > SYMLOG_ABOVE)


def _linear_ticks(low, high):
    raw = (high - low) / 5
    magnitude = 10.0 ** math.floor(math.log10(raw))
    if magnitude == 0:  # a range narrower than the subnormals: label its ends only
        return [low, high]
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    first = math.ceil(low / step)
    return [index * step for index in range(first, math.floor(high / step) + 1)]


def _symlog_ticks(low, high):
    ticks = [0.0] if low <= 0 <= high else []
    for exponent in range(0, 309):
        for tick in (10.0 ** exponent, -(10.0 ** exponent)):
            if low <= tick <= high:
                ticks.append(tick)
    ticks.sort()
    stride = max(1, math.ceil(len(ticks) / 9))  # at most about nine labels
    return ticks[::stride]


def scale_ticks(scale):
    return _symlog_ticks(scale.low, scale.high) if scale.symlog else _linear_ticks(scale.low, scale.high)


def downsample(points, limit=MAX_PLOT_POINTS, keep_largest_y=0):
    """At most ``limit`` points, evenly strided, always keeping the ``keep_largest_y`` largest y:
    for an error plot the worst points are the ones that must not disappear."""
    if len(points) <= limit:
        return list(points)
    kept = set()
    if keep_largest_y:
        largest_first = sorted(range(len(points)), key=lambda index: points[index][1], reverse=True)
        kept.update(largest_first[:keep_largest_y])
    others = [index for index in range(len(points)) if index not in kept]
    stride = len(others) / (limit - len(kept))
    kept.update(others[int(step * stride)] for step in range(limit - len(kept)))
    return [points[index] for index in sorted(kept)]


class Layer(NamedTuple):
    label: str
    color: str
    points: list   # (x, y); a non-finite y breaks a line and is left out of a scatter
    dots: bool


class Frame(NamedTuple):
    x: Scale
    y: Scale

    def position(self, x, y):
        width = PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT
        height = PLOT_HEIGHT - PLOT_TOP - PLOT_BOTTOM
        return (PLOT_LEFT + self.x.fraction(x) * width, PLOT_TOP + (1 - self.y.fraction(y)) * height)


def _line_path(frame, points):
    commands, pen_down = [], False
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False  # a gap, not a line through a missing value
            continue
        px, py = frame.position(x, y)
        commands.append(f"{'L' if pen_down else 'M'}{px:.1f} {py:.1f}")
        pen_down = True
    return "".join(commands)


def _dot_path(frame, points):
    # A zero-length segment with a round cap draws a dot in about a dozen bytes.
    return "".join(f"M{px:.1f} {py:.1f}h0" for px, py in
                   (frame.position(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)))


def _svg_layer(frame, layer):
    if layer.dots:
        return (f'<path d="{_dot_path(frame, layer.points)}" stroke="{layer.color}" stroke-width="3.5" '
                'stroke-linecap="round" stroke-opacity="0.7" fill="none"/>')
    return f'<path d="{_line_path(frame, layer.points)}" stroke="{layer.color}" stroke-width="2" fill="none"/>'


def _svg_axes(frame, x_label, y_label):
    left, right = PLOT_LEFT, PLOT_WIDTH - PLOT_RIGHT
    top, bottom = PLOT_TOP, PLOT_HEIGHT - PLOT_BOTTOM
    parts = [f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#999"/>']
    for tick in scale_ticks(frame.x):
        px = frame.position(tick, frame.y.low)[0]
        parts.append(f'<line x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{bottom}" stroke="#eee"/>'
                     f'<text x="{px:.1f}" y="{bottom + 14}" text-anchor="middle">{tick:g}</text>')
    for tick in scale_ticks(frame.y):
        py = frame.position(frame.x.low, tick)[1]
        parts.append(f'<line x1="{left}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{py + 4:.1f}" text-anchor="end">{tick:g}</text>')
    parts.append(f'<text x="{(left + right) / 2:.0f}" y="{PLOT_HEIGHT - 8}" text-anchor="middle">{_h(x_label)}</text>')
    parts.append(f'<text transform="translate(14 {(top + bottom) / 2:.0f}) rotate(-90)" text-anchor="middle">'
                 f'{_h(y_label)}</text>')
    return parts


def _svg_reference_line(frame, value, label):
    py = frame.position(frame.x.low, value)[1]
    right = PLOT_WIDTH - PLOT_RIGHT
    return (f'<line x1="{PLOT_LEFT}" y1="{py:.1f}" x2="{right}" y2="{py:.1f}" stroke="#000" stroke-dasharray="6 4"/>'
            f'<text x="{right - 4}" y="{py - 4:.1f}" text-anchor="end">{_h(label)}</text>')


def _svg_title(title):
    return f'<text x="{PLOT_LEFT}" y="14" font-weight="bold">{_h(title)}</text>'


def _svg_legend(layers):
    parts, x = [], PLOT_LEFT
    for layer in layers:
        parts.append(f'<rect x="{x}" y="{PLOT_TOP - 12}" width="10" height="10" fill="{layer.color}"/>'
                     f'<text x="{x + 14}" y="{PLOT_TOP - 3}">{_h(layer.label)}</text>')
        x += 24 + 7 * len(layer.label)
    return parts


def svg_plot(title, x_label, y_label, layers, reference=None, y_include=()):
    """An inline SVG plot of ``layers``; ``reference`` = (y, label) draws a dashed line.

    An axis whose data reaches beyond SYMLOG_ABOVE is symmetric-log, so errors of 0.5 and
    of 10**6 ULP, or inputs near 0 and near -745, are all visible; others are linear, as
    the classic picture of sigmoid and its derivative is.
    The y axis spans ``y_include`` and the reference line as well as the data.
    """
    xs = [x for layer in layers for x, _ in layer.points]
    ys = [y for layer in layers for _, y in layer.points]
    include = [reference[0]] if reference and reference[0] is not None else []
    frame = Frame(choose_scale(xs), choose_scale(ys, [*include, *y_include]))
    parts = [f'<svg class="plot" viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" width="{PLOT_WIDTH}" '
             f'height="{PLOT_HEIGHT}" role="img" aria-label="{_h(title)}">',
             f"<title>{_h(title)}</title>", _svg_title(title)]
    parts += _svg_axes(frame, x_label, y_label)
    parts += [_svg_layer(frame, layer) for layer in layers]
    if include and math.isfinite(include[0]):
        parts.append(_svg_reference_line(frame, include[0], reference[1]))
    if len(layers) > 1:
        parts += _svg_legend(layers)
    parts.append("</svg>")
    return "".join(parts)


def _as_real(value):
    return value if isinstance(value, (int, float)) else math.nan  # null (undecided) is not drawn


def _plot_points(xs, ys):
    return [(_as_real(x), _as_real(y)) for x, y in zip(xs or [], ys or [])]


def curve_plot(function, curve):
    """The function and its derivative on one picture, as the classic sigmoid figure."""
    layers = [Layer(function, PLOT_COLORS[0], downsample(_plot_points(curve.get("x"), curve.get("y"))), False)]
    if curve.get("dy"):
        layers.append(Layer(f"derivative of {function}", PLOT_COLORS[1],
                            downsample(_plot_points(curve.get("x"), curve["dy"])), False))
    return svg_plot(f"{function} and its derivative", "x", "value", layers)


def series_plot(series, budget):
    """ULP error against input for one backend, function and format, with the budget line."""
    points = _plot_points(series.get("x"), series.get("ulp"))
    drawable = [point for point in points if all(math.isfinite(value) for value in point)]
    shown = downsample(drawable, keep_largest_y=MAX_PLOT_POINTS // 10)
    title = f"{series.get('backend', '?')} / {series.get('function', '?')} / {series.get('format', '?')}"
    reference = (budget, f"budget {format_number(budget)} ULP") if budget is not None else None
    # An error plot starts at 0 ULP, so 0.5 (correctly rounded) does not look like the floor.
    svg = svg_plot(title, "input", "error (ULP)", [Layer(title, PLOT_COLORS[0], shown, True)], reference,
                   y_include=(0.0,))
    caption = f"{len(points)} points"
    if len(shown) < len(drawable):
        caption += f", {len(shown)} drawn (the worst always)"
    if len(drawable) < len(points):
        caption += f", {len(points) - len(drawable)} with a non-finite or undecided error not drawn"
    return svg, caption


# --------------------------------------------------------------------------- HTML

_HTML_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.error td,tr.fail td{background:#fde2e0}tr.convention td{background:#fff4d6}tr.skip td{color:#777}
.status-fail,.status-error{font-weight:bold;color:#a00}.note{color:#a00}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{color:#555;font-size:12px}
svg.plot{font:11px sans-serif;background:#fff}
"""
_NUMERIC_COLUMNS = {TABLE_HEADER.index(name) for name in ("max ULP", "p99 ULP", "correctly rounded", "budget ULP")}


def _html_table(header, rows, row_class=None, numeric=frozenset()):
    parts = ["<table><thead><tr>", *(f"<th>{_h(cell)}</th>" for cell in header), "</tr></thead><tbody>"]
    for index, cells in enumerate(rows):
        css = f' class="{_h(row_class[index])}"' if row_class else ""
        parts.append(f"<tr{css}>")
        parts += [f'<td class="num">{_h(cell)}</td>' if column in numeric else f"<td>{_h(cell)}</td>"
                  for column, cell in enumerate(cells)]
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def _html_backend_table(table):
    parts = [f"<h3>{_h(table.title)}</h3>"]
    if table.note:
        parts.append(f'<p class="note">{_h(table.note)}</p>')
    if table.rows:
        parts.append(_html_table(TABLE_HEADER, [row.cells for row in table.rows],
                                 [row.status for row in table.rows], _NUMERIC_COLUMNS))
    return "".join(parts)


def _budget_of(report, series):
    if series.get("budget_ulp") is not None:
        return series["budget_ulp"]
    for record in report.get("results", []):
        if (record.get("check") == "accuracy"
                and all(record.get(field) == series.get(field) for field in ("backend", "function", "format"))):
            return record.get("budget_ulp")
    return None


def _html_function_section(report, function):
    parts = [f"<h3>{_h(str(function))}</h3>", '<div class="plots">']
    curve = (report.get("curves") or {}).get(function)
    if isinstance(curve, dict):
        parts.append(f"<figure>{curve_plot(str(function), curve)}<figcaption>the true function and its "
                     "derivative (mpmath)</figcaption></figure>")
    for series in report.get("series") or []:
        if series.get("function") == function:
            svg, caption = series_plot(series, _budget_of(report, series))
            parts.append(f"<figure>{svg}<figcaption>{_h(caption)}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _plotted_functions(report):
    names = list(report.get("curves") or {})
    names += [series.get("function") for series in report.get("series") or []]
    return list(dict.fromkeys(names))  # first appearance order, once each


def _html_detail(detail):
    parts = [f'<h3 class="status-{_h(detail.status)}">{_h(detail.title)}</h3><ul>']
    parts += [f"<li>{_h(line)}</li>" for line in detail.lines]
    parts.append("</ul>")
    if detail.worst:
        parts.append(_html_table(WORST_HEADER, detail.worst, numeric={WORST_HEADER.index("ULP")}))
    return "".join(parts)


def render_html(report):
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>refact conformance report</title>", f"<style>{_HTML_STYLE}</style></head><body>",
             "<h1>refact conformance report</h1>",
             f"<p><strong>{_h(summary_text(report))}</strong></p>",
             f"<p>{_h(provenance_text(report))}</p>", "<h2>Results per backend</h2>"]
    parts += [_html_backend_table(table) for table in backend_tables(report)]
    functions = _plotted_functions(report)
    if functions:
        parts.append("<h2>Functions: the truth, and the error of each backend</h2>")
        parts += [_html_function_section(report, function) for function in functions]
    details = failure_details(report)
    if details:
        parts.append("<h2>Worst cases of failures and errors</h2>")
        parts += [_html_detail(detail) for detail in details]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- writing

def write_json(report, path):
    return atomic_write_text(path, to_json_text(report))


def write_markdown(report, path):
    return atomic_write_text(path, render_markdown(report))


def write_junit(report, path):
    return atomic_write_text(path, render_junit(report))


def write_html(report, path):
    return atomic_write_text(path, render_html(report))


_RENDERERS = {"json": to_json_text, "markdown": render_markdown, "junit": render_junit, "html": render_html}


def write_reports(report, json=None, markdown=None, junit=None, html=None, *, failures=None):
    """Write the report in every format given a path; returns {format: path written}.

    The report is validated against the schema first (an invalid one is not written: a
    CI parses what it finds), and everything is rendered before anything is written, so
    a rendering error leaves all the previous files as they were rather than a mix of
    two runs.

    A report that cannot be written (OSError or ValueError: a directory, a FIFO or a
    symlink at the path, a read-only directory, a full disk) does not stop the others.
    With a dict as ``failures`` each such error is put there as ``{format: error}``;
    without, the first one is raised once the others are written.
    """
    paths = {"json": json, "markdown": markdown, "junit": junit, "html": html}
    wanted = [name for name, path in paths.items() if path is not None]
    try:
        validate(report)  # only a valid report is written: a CI parses what it finds
    except InvalidReport as invalid:
        errors = {name: ValueError(f"not written, {str(invalid).splitlines()[0]} "
                                   f"({str(invalid).splitlines()[1].strip()})") for name in wanted}
        if failures is None:
            raise invalid
        failures.update(errors)
        return {}
    texts = {name: _RENDERERS[name](report) for name in wanted}
    written, errors = {}, {}
    for name, text in texts.items():
        try:
            written[name] = atomic_write_text(paths[name], text)
        except (OSError, ValueError) as error:
            errors[name] = error
    if failures is not None:
        failures.update(errors)
    elif errors:
        raise next(iter(errors.values()))
    return written

"""Write a conformance report as JSON, Markdown, JUnit XML and HTML; read it back; validate it.

The runner builds one report dict following the ``refact.report/1`` contract (DESIGN.md,
"Report contract"; the JSON Schema ships as ``data/report.schema.json``). This module only
renders it, so every format shows the same records in the same words:

- JSON: the contract itself, what a CI parses and what ``refact diff`` compares.
- Markdown (markdown.py): a CI job summary (GitHub's ``$GITHUB_STEP_SUMMARY``): counts, the
  overview matrix per format and the top findings; or, full, every record and finding.
- JUnit XML (junit.py): one testcase per backend/function/format/check, for a CI's test viewer.
- HTML (html.py, plots in svg.py): one self-contained file, overview matrices, findings
  first, passes and skips folded, worst points, conventions and error plots (no script, no
  external CSS, font or image).

What these say about a record is computed once, in model.py.

Non-finite numbers. JSON has no NaN or infinity, yet a report is full of them: -inf is a
common input, NaN a common wrong output. Every non-finite float is written as the string
``"nan"``, ``"inf"`` or ``"-inf"``; the schema allows those strings wherever a real number is
allowed. ``load_report`` turns them back into floats in the fields that hold numbers, and only
there, so a message that reads "inf" stays a string. ``-0.0`` needs nothing: JSON keeps its sign.

Every write is atomic (a temporary file in the same directory, fsync, ``os.replace``): after a
crash the previous report is still whole, never half-written.
"""

import importlib.resources
import json as _json
import math

from refact.conformance.report.html import render_html
from refact.conformance.report.junit import render_junit
from refact.conformance.report.markdown import escape_markdown, markdown_table, render_markdown
from refact.conformance.report.model import (
    STATUS_LABEL, STATUS_SEVERITY, TABLE_HEADER, WORST_HEADER, format_number,
)
from refact.conformance.report.svg import downsample
from refact.conformance.run.records import SCHEMA
from refact.conformance.truth.store import atomic_write_text

__all__ = [
    "SCHEMA", "STATUS_SEVERITY", "STATUS_LABEL", "TABLE_HEADER", "WORST_HEADER", "InvalidReport",
    "to_plain_json", "from_plain_json", "to_json_text", "load_report", "load_schema", "validate",
    "render_markdown", "render_junit", "render_html", "markdown_table", "format_number", "downsample",
    "write_json", "write_markdown", "write_junit", "write_html", "write_reports",
    "atomic_write_text", "escape_markdown",
]


NONFINITE_TEXT = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}

# The fields that hold real numbers (the schema's "real_or_null" and "value"): only these are
# decoded from "nan"/"inf"/"-inf" when a report is read back.
_REAL_FIELDS_OF_RESULT = ("max_ulp", "p99_ulp", "mean_ulp", "budget_ulp")
_REAL_FIELDS_OF_WORST = ("input", "output", "expected", "ulp")
_REAL_FIELDS_OF_CONVENTION = ("max_ulp",)
_REAL_FIELDS_OF_CURVE = ("x", "y", "dy")
_REAL_FIELDS_OF_SERIES = ("x", "ulp", "budget_ulp")


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


# --------------------------------------------------------------------------- writing

def write_json(report, path):
    return atomic_write_text(path, to_json_text(report))


def write_markdown(report, path, full=True):
    return atomic_write_text(path, render_markdown(report, full=full))


def write_junit(report, path):
    return atomic_write_text(path, render_junit(report))


def write_html(report, path):
    return atomic_write_text(path, render_html(report))


def write_reports(report, json=None, markdown=None, junit=None, html=None, *, failures=None,
                  markdown_full=False):
    """Write the report in every format given a path; returns {format: path written}.

    The Markdown report is the compact job summary unless ``markdown_full``.

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
    renderers = {"json": to_json_text, "markdown": lambda data: render_markdown(data, full=markdown_full),
                 "junit": render_junit, "html": render_html}
    texts = {name: renderers[name](report) for name in wanted}
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

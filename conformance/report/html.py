"""The HTML report: one self-contained file (no script, no external CSS, font or image).

It opens on what matters: the counts, a table of contents, then an overview matrix per
format (functions by backend columns, each cell the accuracy's max ULP coloured by the
cell's worst severity and linked to its record). Each backend's section lists its
findings first (fails by severity, then ULP; errors; conventions) with their failure
classes, and folds its passes and skips into a <details> element. Every backend,
function and format has an anchor; a record with a finding gets a detail: its message,
figures, conventions (with the measured distance and a link to their documentation),
its worst points and, for an accuracy record with a plot series, its error plots.
"""

import html

from refact.conformance.report import svg
from refact.conformance.report.model import (
    CHECK_MARK, STATUS_LABEL, TABLE_HEADER, WORST_HEADER, anchor, column_anchor, column_name, finding_order,
    format_fraction, format_number, formats_of, group_key, is_finding, matrix, provenance_text, record_anchor,
    record_detail, records_by_column, severity_counts, spell_control_characters, status_counts, summary_text,
    table_row,
)

__all__ = ["render_html", "STYLE", "ROW_ELEMENTS", "WORST_ROWS"]

#: Values of a row shown in a worst-point table, and worst points shown per record (the JSON
#: report has every row whole and the 5 worst points): a default run has some 500 findings.
ROW_ELEMENTS, WORST_ROWS = 6, 3

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h2{border-bottom:2px solid #ddd;margin-top:1.6em}h3{margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.4em 0 1em}th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.critical{background:#f5a49c}.major{background:#fbd3a1}.minor{background:#fff1a8}
.error{background:#dccbef}.convention{background:#cfe6fb}.pass{background:#e2f3e2}.skip{color:#888}
.matrix{font-size:12px}.matrix td{text-align:center;white-space:nowrap}.matrix td a{color:inherit;text-decoration:none;display:block}
.matrix td.conv{box-shadow:inset 0 0 0 2px #2f7fd0}
details{margin:.3em 0 1em}summary{cursor:pointer;color:#333}
.note{color:#a00}.record{border-left:4px solid #ccc;padding-left:10px;margin:1em 0}
.record.critical,.record.major,.record.minor,.record.error,.record.convention,.record.pass{background:none}
.record.critical{border-color:#d9534f}.record.major{border-color:#f0a040}.record.minor{border-color:#e0c020}
.record.error{border-color:#8e44ad}.record.convention{border-color:#2f7fd0}
.plots{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0}figcaption{color:#555;font-size:12px}
svg.plot{font:10px sans-serif;background:#fff}nav ul{columns:3}code{font-size:12px}
"""


def _h(text):
    """Text for HTML, in an element or an attribute."""
    return html.escape(spell_control_characters(text))


def _row_class(status, severity):
    return severity or status


def _numeric_style(table_class, columns):
    """CSS right-aligning the ``columns`` (0-based) of tables of ``table_class``: once in the
    style sheet, not on each of the report's thousands of cells."""
    selectors = ",".join(f"table.{table_class} td:nth-child({column + 1})" for column in sorted(columns))
    return selectors + "{text-align:right;font-variant-numeric:tabular-nums}"


_FINDING_HEADER = TABLE_HEADER + ("",)
_NUMERIC = {TABLE_HEADER.index(name) for name in ("max ULP", "correctly rounded", "budget ULP")}
STYLE += "".join((_numeric_style("counts", range(2, 10)), _numeric_style("findings", _NUMERIC),
                  _numeric_style("folded", (4, 5, 6)), _numeric_style("worst", (WORST_HEADER.index("ULP"),)))) + "\n"


def _table(table_class, header, rows, row_classes=None, row_ids=None):
    parts = [f'<table class="{table_class}"><thead><tr>', *(f"<th>{_h(cell)}</th>" for cell in header),
             "</tr></thead><tbody>"]
    for index, cells in enumerate(rows):
        attributes = ""
        if row_classes and row_classes[index]:
            attributes += f' class="{_h(row_classes[index])}"'
        if row_ids and row_ids[index]:
            attributes += f' id="{row_ids[index]}"'
        # HTML ends a cell and a row at the next one by itself: the closing tags are left
        # out, as a report of hundreds of tables is a third smaller without them
        parts.append(f"<tr{attributes}>")
        parts += [f"<td>{cell}" for cell in cells]
    parts.append("</tbody></table>")
    return "".join(parts)


# --------------------------------------------------------------------------- top of the page

def _column_title(column, entry):
    words = [column]
    if entry.get("version"):
        words.append(str(entry["version"]))
    if entry.get("device"):
        words.append(f"on {entry['device']}")
    return " ".join(words)


def _counts_table(groups):
    header = ("backend", "version", "pass", "fail", "critical", "major", "minor", "convention", "error", "skip")
    rows = []
    for column, (entry, records) in groups.items():
        statuses, severities = status_counts(records), severity_counts(records)
        rows.append([f'<a href="#{column_anchor(column)}">{_h(column)}</a>', _h(entry.get("version") or "-"),
                     *(str(statuses[s]) for s in ("pass", "fail")),
                     *(str(severities[s]) for s in ("critical", "major", "minor")),
                     *(str(statuses[s]) for s in ("convention", "error", "skip"))])
    return _table("counts", header, rows)


def _contents(report, groups, formats):
    items = ['<li><a href="#overview">Overview</a><ul>']
    items += [f'<li><a href="#{anchor("overview", fmt)}">{_h(fmt)}</a></li>' for fmt in formats]
    items.append("</ul></li>")
    for column, (_, records) in groups.items():
        findings = sum(is_finding(record) for record in records)
        items.append(f'<li><a href="#{column_anchor(column)}">{_h(column)}</a> ({findings} findings)</li>')
    if report.get("curves"):
        items.append('<li><a href="#functions">The functions</a></li>')
    return '<nav><h2>Contents</h2><ul>' + "".join(items) + "</ul></nav>"


_MATRIX_LEGEND = ("Each cell: the accuracy check's max ULP over points outside the failure classes, "
                  "+Nc the points in a failure class, letters for other failing checks ("
                  + ", ".join(f"{mark} {check}" for check, mark in CHECK_MARK.items())
                  + "), (conv.) a documented convention (blue frame), — not provided. "
                  "Colour: the worst severity of the cell's records (critical, major, minor), "
                  "blue a convention, green all passed.")


def _matrix_html(table):
    header = ["function"] + [f'<a href="#{column_anchor(column)}">{_h(column)}</a>' for column in table.columns]
    parts = [f'<h3 id="{anchor("overview", table.format)}">{_h(table.format)}</h3>',
             '<table class="matrix"><thead><tr>', *(f"<th>{cell}</th>" for cell in header), "</tr></thead><tbody>"]
    for function in table.functions:
        parts.append(f"<tr><th>{_h(function)}</th>")
        for column in table.columns:
            cell = table.cells.get((function, column))
            if cell is None:
                parts.append("<td></td>")
                continue
            css = [_row_class(cell.status, cell.severity)] + (["conv"] if cell.convention else [])
            parts.append(f'<td class="{" ".join(css)}" title="{_h(cell.title)}">'
                         f'<a href="#{cell.target}">{_h(cell.text)}</a></td>')
        parts.append("</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


# --------------------------------------------------------------------------- a backend's section



def _findings_table(records):
    rows, classes = [], []
    for record in records:
        row = table_row(record)
        rows.append([_h(cell) for cell in row.cells] + [f'<a href="#{record_anchor(record)}">detail</a>'])
        classes.append(_row_class(row.status, row.severity))
    return _table("findings", _FINDING_HEADER, rows, row_classes=classes)


def _folded(records, placed):
    """The passes and the skips of a backend in one <details>; the skips of one function
    and format in one row. A backend/function/format without a finding gets its anchor
    on its first row here (``placed``: the anchors already on the page)."""
    passes = [record for record in records if record.get("status") == "pass"]
    skips = {}
    for record in records:
        if record.get("status") == "skip":
            skips.setdefault((group_key(record), str(record.get("message") or "")), []).append(record)
    if not passes and not skips:
        return ""
    rows, ids = [], []

    def place(record):
        target = record_anchor(record)
        if target in placed:
            return ""
        placed.add(target)
        return target

    for record in passes:
        ids.append(place(record))
        rows.append([_h(record.get("function")), _h(record.get("format")), _h(record.get("check")), "pass",
                     _h(format_number(record.get("max_ulp"))), _h(format_fraction(record.get("correctly_rounded"))),
                     _h(format_number(record.get("budget_ulp"))), ""])
    for ((_, function, fmt), message), group in skips.items():
        ids.append(place(group[0]))
        rows.append([_h(function), _h(fmt), _h(", ".join(str(record.get("check")) for record in group)), "skip",
                     "", "", "", _h(message)])
    header = ("function", "format", "check", "status", "max ULP", "correctly rounded", "budget ULP", "note")
    summary = f"{len(passes)} pass, {sum(len(group) for group in skips.values())} skip (in {len(skips)} rows)"
    return (f"<details><summary>{_h(summary)}</summary>"
            + _table("folded", header, rows, row_classes=["pass"] * len(passes) + ["skip"] * len(skips),
                     row_ids=ids)
            + "</details>")


def _link(url):
    if url.startswith(("https://", "http://")):
        return f'<a href="{_h(url)}">{_h(url)}</a>'
    return _h(url)


def _detail_html(record, series):
    detail = record_detail(record, elements=ROW_ELEMENTS, limit=WORST_ROWS)
    css = _row_class(detail.status, detail.severity)
    parts = [f'<div class="record {css}"><h4>{_h(detail.title)}</h4><ul>']
    parts += [f"<li>{_h(line)}</li>" for line in detail.lines]
    for name, summary, reference, points, distance in detail.conventions:
        text = f"convention <b>{_h(name)}</b>"
        if summary:
            text += f": {_h(summary)}"
        text += f"; covers {_h(points)} points, measured {_h(distance)} ULP from the truth"
        if reference:
            text += f" (documented at {_link(reference)})"
        parts.append(f"<li>{text}</li>")
    parts.append("</ul>")
    if detail.worst:
        parts.append(_table("worst", WORST_HEADER, [[_h(cell) for cell in row] for row in detail.worst]))
    if series is not None and record.get("check") == "accuracy":
        views, caption = svg.error_plots(series, record, x_label=str(series.get("x_label") or "input"))
        parts.append(f'<figure><div class="plots">{"".join(views)}</div><figcaption>{_h(caption)}</figcaption></figure>')
    parts.append("</div>")
    return "".join(parts)


def _pass_line(record):
    return (f"<li>{_h(record.get('check'))}: {_h(record.get('status'))}"
            + (f", max {_h(format_number(record['max_ulp']))} ULP" if record.get("max_ulp") is not None else "")
            + "</li>")


def _record_sections(records, series_by_group, placed):
    """A section per backend/function/format with a finding, worst first."""
    groups = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    with_findings = [sorted(group, key=finding_order) for group in groups.values() if any(map(is_finding, group))]
    parts = []
    for group in sorted(with_findings, key=lambda group: finding_order(group[0])):
        target = record_anchor(group[0])
        placed.add(target)
        column, function, fmt = group_key(group[0])
        parts.append(f'<section id="{target}"><h3>{_h(column)} / {_h(function)} / {_h(fmt)}</h3>')
        series = series_by_group.get(group_key(group[0]))
        parts += [_detail_html(record, series) for record in group if is_finding(record)]
        others = [record for record in group if not is_finding(record)]
        if others:
            parts.append("<ul>" + "".join(_pass_line(record) for record in others) + "</ul>")
        parts.append("</section>")
    return parts


def _backend_section(column, entry, records, series_by_group, placed):
    statuses = status_counts(records)
    parts = [f'<h2 id="{column_anchor(column)}">{_h(_column_title(column, entry))}</h2>']
    if not entry.get("available", True):
        parts.append(f'<p class="note">not available: {_h(entry.get("error") or "no reason given")}</p>')
    parts.append("<p>" + _h(", ".join(f"{statuses[s]} {s}" for s in ("pass", "fail", "convention", "error", "skip")))
                 + "</p>")
    findings = sorted((record for record in records if is_finding(record)), key=finding_order)
    if findings:
        parts.append(_findings_table(findings))
    # the detail sections come first so the anchors of pass-only cells go to the folded rows
    sections = _record_sections(records, series_by_group, placed)
    parts.append(_folded(records, placed))
    parts += sections
    return "".join(parts)


def _functions_section(report):
    curves = report.get("curves") or {}
    figures = [f"<figure>{svg.curve_plot(str(function), curve)}</figure>"
               for function, curve in curves.items() if isinstance(curve, dict)]
    if not figures:
        return ""
    return ('<h2 id="functions">The functions: the truth and its derivative (mpmath)</h2><div class="plots">'
            + "".join(figures) + "</div>")


def _series_by_group(report):
    by_group = {}
    for series in report.get("series") or []:
        if isinstance(series, dict):
            by_group.setdefault(group_key(series), series)
    return by_group


def _baseline_html(report):
    baseline = report.get("baseline")
    if not isinstance(baseline, dict):
        return ""
    return (f"<p><strong>Against the baseline {_h(baseline.get('path', '?'))}: "
            f"{_h(baseline.get('regressions', 0))} regressions.</strong></p>")


def render_html(report):
    groups = records_by_column(report)
    formats = formats_of(report)
    series_by_group = _series_by_group(report)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             "<title>refact conformance report</title>", f"<style>{STYLE}</style></head><body>",
             "<h1>refact conformance report</h1>",
             f"<p><strong>{_h(summary_text(report))}</strong></p>",
             f"<p>{_h(provenance_text(report))}</p>", _baseline_html(report), _counts_table(groups),
             _contents(report, groups, formats),
             '<h2 id="overview">Overview</h2>', f"<p>{_h(_MATRIX_LEGEND)}</p>"]
    parts += [_matrix_html(matrix(report, fmt)) for fmt in formats]
    placed = set()
    parts += [_backend_section(column, entry, records, series_by_group, placed)
              for column, (entry, records) in groups.items()]
    parts.append(_functions_section(report))
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part) + "\n"

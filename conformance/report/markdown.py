"""The Markdown report, for a CI job summary (GitHub's ``$GITHUB_STEP_SUMMARY``, 1 MiB at
most, shown best well under 64 KiB).

Compact (``full=False``, what ``refact conform --markdown`` writes): the counts per
backend, the overview matrix of each format and the top findings (by severity, then
ULP). Full (``--markdown-full``): the same, then every backend's records in a table
(findings first) and the detail of every finding with its worst points.
"""

import re

from refact.conformance.report.model import (
    STATUS_SEVERITY, TABLE_HEADER, WORST_HEADER, class_text, column_name, finding_order, findings, format_number,
    format_value, formats_of, is_finding, matrix, provenance_text, record_detail, records_by_column,
    severity_counts, spell_control_characters, status_counts, summary_text, table_row,
)

__all__ = ["render_markdown", "escape_markdown", "markdown_table", "TOP_FINDINGS", "FINDING_HEADER"]

#: Findings listed by the compact report.
TOP_FINDINGS = 20
#: Values of a row shown in the compact report's worst point.
ROW_ELEMENTS = 4
FINDING_HEADER = ("severity", "backend", "function", "format", "check", "max ULP", "classes", "worst input (hex)",
                  "output", "expected")

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


def _line(escaped_cells):
    return "| " + " | ".join(escaped_cells) + " |"


def markdown_table(header, rows):
    """The header, its rule, and rows of plain-text cells, all escaped."""
    lines = [_line(escape_markdown(cell) for cell in header), "|" + "---|" * len(header)]
    return lines + [_line(escape_markdown(cell) for cell in row) for row in rows]


def _bold(text):
    return f"**{text}**" if text else text


def _counts(groups):
    header = ("backend", "version", "pass", "fail", "critical", "major", "minor", "convention", "error", "skip")
    rows = []
    for column, (entry, records) in groups.items():
        statuses, severities = status_counts(records), severity_counts(records)
        rows.append([column, str(entry.get("version") or "-"), *(str(statuses[s]) for s in ("pass", "fail")),
                     *(str(severities[s]) for s in ("critical", "major", "minor")),
                     *(str(statuses[s]) for s in ("convention", "error", "skip"))])
    return markdown_table(header, rows)


def _matrix_lines(table):
    lines = [_line([escape_markdown(table.format)] + [escape_markdown(column) for column in table.columns]),
             "|" + "---|" * (len(table.columns) + 1)]
    for function in table.functions:
        cells = [escape_markdown(function)]
        for column in table.columns:
            cell = table.cells.get((function, column))
            text = escape_markdown(cell.text) if cell else ""
            bad = cell is not None and STATUS_SEVERITY.get(cell.status, 5) >= STATUS_SEVERITY["fail"]
            cells.append(_bold(text) if bad else text)
        lines.append(_line(cells))
    return lines


MATRIX_NOTE = ("Each cell: the accuracy check's max ULP over points outside the failure classes, +Nc the points "
               "in a failure class, S/P/D/G a failing special-values/properties/dtype/gradient check, **bold** "
               "a fail or error, (conv.) a documented convention, — not provided.")


def _finding_row(record):
    worst = (record.get("worst") or [None])[0]
    worst = worst if isinstance(worst, dict) else {}
    return [record.get("severity") or record.get("status", "?"), column_name(record), str(record.get("function", "?")),
            str(record.get("format", "?")), str(record.get("check", "?")), format_number(record.get("max_ulp")),
            class_text(record), format_value(worst.get("input_hex"), ROW_ELEMENTS) if worst else "",
            format_value(worst.get("output"), ROW_ELEMENTS) if worst else "",
            format_value(worst.get("expected"), ROW_ELEMENTS) if worst else ""]


def _head(report, groups):
    lines = ["# refact conformance report", "", f"**{escape_markdown(summary_text(report))}**", "",
             escape_markdown(provenance_text(report)), ""]
    baseline = report.get("baseline")
    if isinstance(baseline, dict):
        lines += [f"**Against the baseline {escape_markdown(baseline.get('path', '?'))}: "
                  f"{escape_markdown(baseline.get('regressions', 0))} regressions.**", ""]
    lines += _counts(groups) + [""]
    for column, (entry, _) in groups.items():
        if not entry.get("available", True):
            lines += [f"{escape_markdown(column)} not available: {escape_markdown(entry.get('error') or 'no reason given')}", ""]
    lines += ["## Overview", "", escape_markdown(MATRIX_NOTE), ""]
    for fmt in formats_of(report):
        lines += _matrix_lines(matrix(report, fmt)) + [""]
    return lines


def _backend_lines(column, entry, records):
    title = " ".join([column] + ([str(entry["version"])] if entry.get("version") else [])
                     + ([f"on {entry['device']}"] if entry.get("device") else []))
    lines = [f"## {escape_markdown(title)}", ""]
    if not records:
        return lines
    ordered = sorted((r for r in records if is_finding(r)), key=finding_order) + [r for r in records if not is_finding(r)]
    lines += markdown_table(TABLE_HEADER, [])
    for record in ordered:
        row = table_row(record)
        cells = [escape_markdown(cell) for cell in row.cells]
        if STATUS_SEVERITY.get(row.status, 5) >= STATUS_SEVERITY["fail"]:
            cells[TABLE_HEADER.index("status")] = _bold(cells[TABLE_HEADER.index("status")])
        lines.append(_line(cells))
    return lines + [""]


def render_markdown(report, full=True):
    """The Markdown report: everything (``full``), or the compact job summary."""
    groups = records_by_column(report)
    lines = _head(report, groups)
    found = findings(report)
    if not full:
        shown = found[:TOP_FINDINGS]
        if not shown:
            lines += ["## Top findings", "", "No fail, error or convention.", ""]
        else:
            lines += [f"## Top findings ({len(shown)} of {len(found)})", ""]
            lines += markdown_table(FINDING_HEADER, [_finding_row(record) for record in shown]) + [""]
        rest = len(report.get("results", [])) - len(shown)
        lines += [escape_markdown(f"{rest} more records, {len(found) - len(shown)} of them findings: "
                                  "every record is in the full report (--markdown-full, --html, --json)."), ""]
        return "\n".join(lines)
    for column, (entry, records) in groups.items():
        lines += _backend_lines(column, entry, records)
    if found:
        lines += ["## Findings: every fail, error and convention, worst first", ""]
        for record in found:
            detail = record_detail(record)
            lines += [f"### {escape_markdown(detail.title)}", ""]
            lines += [f"- {escape_markdown(line)}" for line in detail.lines]
            for name, summary, reference, points, distance in detail.conventions:
                text = f"convention {name}" + (f": {summary}" if summary else "")
                text += f"; covers {points} points, measured {distance} ULP from the truth"
                lines.append(f"- {escape_markdown(text)}" + (f" (<{reference}>)" if reference.startswith("http") and
                                                              not set(reference) & set("<> ") else ""))
            lines.append("")
            if detail.worst:
                lines += markdown_table(WORST_HEADER, detail.worst) + [""]
    return "\n".join(lines)

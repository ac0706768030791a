"""``refact diff OLD.json NEW.json``: what got worse and what got better between two runs.

Records are matched by (backend, function, format, check). A matched record *regressed* when

- its status got worse, in the order pass < convention < skip < fail < error
  (``reports.STATUS_SEVERITY``): a new convention is a departure from the mathematics, a
  skip means a function or format went missing, and a crash tells less than a wrong number;
- its max ULP grew by more than max(0.5 ULP, 10 %): less than that is what two runs on
  different machines or input draws differ by, not a change of implementation;
- or a failure class counts more points. ``undecided`` is left out: it is the oracle's
  limit, not the backend's.

It *improved* when one of these went the other way and none got worse. Records present in one
report only are listed as added or removed, and never fail the command: the exit status is 1
on a regression and 0 otherwise (2 for unreadable or invalid files).
"""

import math
from dataclasses import dataclass, field

from refact.conformance.numbers.ruler import ALL_CLASSES, UNDECIDED
from refact.conformance.report.writers import (
    STATUS_SEVERITY, escape_markdown, format_number, markdown_table,
)

__all__ = ["compare", "Change", "ReportDiff", "render_text", "render_markdown"]

KEY_FIELDS = ("backend", "function", "format", "check")
ULP_ABSOLUTE_TOLERANCE = 0.5
ULP_RELATIVE_TOLERANCE = 0.10
# every class a record counts but "undecided", which is the oracle's, not the backend's
COMPARED_CLASSES = tuple(name for name in ALL_CLASSES if name != UNDECIDED)
DIFF_HEADER = ("backend", "function", "format", "check", "status", "max ULP", "why")


@dataclass
class Change:
    """One record as it was (``old``) and is (``new``); either is None if added or removed."""
    key: tuple
    old: dict | None
    new: dict | None
    worse: list = field(default_factory=list)
    better: list = field(default_factory=list)

    def to_dict(self):
        def brief(record):
            return None if record is None else {"status": record.get("status"), "max_ulp": record.get("max_ulp")}
        return {**dict(zip(KEY_FIELDS, self.key)), "old": brief(self.old), "new": brief(self.new),
                "worse": self.worse, "better": self.better}


@dataclass
class ReportDiff:
    regressions: list
    improvements: list
    added: list
    removed: list
    matched: int

    def sections(self):
        return {"regressions": self.regressions, "improvements": self.improvements,
                "added": self.added, "removed": self.removed}

    def to_dict(self):
        return {"matched": self.matched,
                **{name: [change.to_dict() for change in changes] for name, changes in self.sections().items()}}


def records_by_key(report):
    """(backend, function, format, check) -> record; ValueError if a key appears twice,
    since a diff could not tell which of the two to compare."""
    records = {}
    for record in report.get("results", []):
        key = tuple(record.get(name) for name in KEY_FIELDS)
        if key in records:
            raise ValueError(f"the report has two records for {' / '.join(map(str, key))}")
        records[key] = record
    return records


def _status_change(old, new):
    before, after = old.get("status"), new.get("status")
    if before == after:
        return "", ""
    reason = f"status {before} -> {after}"
    worse = STATUS_SEVERITY.get(after, len(STATUS_SEVERITY)) > STATUS_SEVERITY.get(before, len(STATUS_SEVERITY))
    return (reason, "") if worse else ("", reason)


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _grew(before, after, absolute, relative):
    # Tolerance relative to the smaller value, so that the test is the same both ways.
    return after > before + max(absolute, relative * abs(before))


def _ulp_change(old, new, absolute, relative):
    before, after = old.get("max_ulp"), new.get("max_ulp")
    if not (_is_real(before) and _is_real(after)):
        return "", ""  # a skip or an error has no max ULP to compare
    reason = f"max ULP {format_number(before)} -> {format_number(after)}"
    if _grew(before, after, absolute, relative):
        return reason, ""
    if _grew(after, before, absolute, relative):
        return "", reason
    return "", ""


def _class_changes(old, new):
    before, after = old.get("classes") or {}, new.get("classes") or {}
    worse, better = [], []
    for name in COMPARED_CLASSES:
        count_before, count_after = before.get(name, 0), after.get(name, 0)
        if count_after != count_before:
            (worse if count_after > count_before else better).append(f"{name} {count_before} -> {count_after}")
    return worse, better


def _differences(old, new, absolute, relative):
    status_worse, status_better = _status_change(old, new)
    ulp_worse, ulp_better = _ulp_change(old, new, absolute, relative)
    classes_worse, classes_better = _class_changes(old, new)
    worse = [reason for reason in (status_worse, ulp_worse) if reason] + classes_worse
    better = [reason for reason in (status_better, ulp_better) if reason] + classes_better
    return worse, better


def compare(old_report, new_report, absolute_tolerance=ULP_ABSOLUTE_TOLERANCE,
            relative_tolerance=ULP_RELATIVE_TOLERANCE):
    """Regressions, improvements, added and removed records from ``old_report`` to ``new_report``.

    A record whose max ULP grows by at most max(absolute_tolerance, relative_tolerance * old)
    has not changed. Raises ValueError if a report holds two records with the same key.
    """
    old_records, new_records = records_by_key(old_report), records_by_key(new_report)
    regressions, improvements, added = [], [], []
    for key, new in new_records.items():
        old = old_records.get(key)
        if old is None:
            added.append(Change(key, None, new))
            continue
        change = Change(key, old, new, *_differences(old, new, absolute_tolerance, relative_tolerance))
        if change.worse:
            regressions.append(change)
        elif change.better:
            improvements.append(change)
    removed = [Change(key, old, None) for key, old in old_records.items() if key not in new_records]
    matched = sum(1 for key in new_records if key in old_records)
    return ReportDiff(regressions, improvements, added, removed, matched)


# --------------------------------------------------------------------------- rendering

def _before_after(change, describe):
    if change.old is None or change.new is None:  # added or removed: one side only
        return describe(change.new if change.old is None else change.old)
    before, after = describe(change.old), describe(change.new)
    return before if before == after else f"{before} -> {after}"


def change_cells(change):
    """The row of one change, computed once for the text and the Markdown tables."""
    if change.old is None:
        why = "new record"
    elif change.new is None:
        why = "record gone"
    else:
        why = "; ".join(change.worse + change.better)
    return (*(str(part) for part in change.key),
            _before_after(change, lambda record: str(record.get("status"))),
            _before_after(change, lambda record: format_number(record.get("max_ulp"))),
            why)


def headline(result):
    counts = ", ".join(f"{name}: {len(changes)}" for name, changes in result.sections().items())
    return f"{counts} ({result.matched} records matched)"


def _text_table(rows):
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def render_text(result):
    lines = [f"refact diff: {headline(result)}"]
    for name, changes in result.sections().items():
        if changes:
            lines += ["", f"{name.capitalize()}:"]
            lines += _text_table([DIFF_HEADER] + [change_cells(change) for change in changes])
    return "\n".join(lines) + "\n"


def render_markdown(result, old_name="old", new_name="new"):
    lines = [f"# refact diff: {escape_markdown(old_name)} -> {escape_markdown(new_name)}", "",
             f"**{escape_markdown(headline(result))}**", ""]
    for name, changes in result.sections().items():
        if changes:
            lines += [f"## {name.capitalize()}", ""]
            lines += markdown_table(DIFF_HEADER, [change_cells(change) for change in changes]) + [""]
    return "\n".join(lines)

"""``refact diff OLD.json NEW.json``: what got worse and what got better between two runs.

Records are matched by (backend column, function, format, check). A matched record *regressed* when

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

A backend's *column* is its name, or ``name[variant]`` for a record carrying a ``variant``
(``torch[compile]``): a variant is matched with the same variant only. :func:`compare_across`
compares two columns of one report the same way, matched on function, format and check.

Two reports made differently (another seed, case level, refact version, backend version,
device, platform or CPU) differ for that reason too: :func:`compare` lists each such
difference as a warning, so that a change is not taken for the implementation's.
"""

import math
from dataclasses import dataclass, field

from refact.conformance.numbers.ruler import ALL_CLASSES, UNDECIDED
from refact.conformance.report.writers import (
    STATUS_SEVERITY, escape_markdown, format_number, markdown_table,
)

__all__ = [
    "compare", "compare_across", "Change", "ReportDiff", "render_text", "render_markdown", "baseline_lines",
    "backend_column", "records_by_key", "records_expected", "environment_warnings",
]

KEY_FIELDS = ("backend", "function", "format", "check")
#: What records of two columns of one report are matched on.
ACROSS_KEY_FIELDS = KEY_FIELDS[1:]
ULP_ABSOLUTE_TOLERANCE = 0.5
ULP_RELATIVE_TOLERANCE = 0.10
# every class a record counts but "undecided", which is the oracle's, not the backend's
COMPARED_CLASSES = tuple(name for name in ALL_CLASSES if name != UNDECIDED)
CHANGE_HEADER = ("status", "max ULP", "why")
#: (what differs, where it is in a report), in the order warned about
ENVIRONMENT_FIELDS = (
    ("seeds", ("environment", "seed")),
    ("case levels", ("environment", "cases")),
    ("refact versions", ("refact_version",)),
    ("devices", ("environment", "device")),
    ("platforms", ("environment", "platform")),
    ("CPUs", ("environment", "cpu")),
)
NOT_RECORDED = "not recorded"


@dataclass
class Change:
    """One record as it was (``old``) and is (``new``); either is None if added or removed."""
    key: tuple
    old: dict | None
    new: dict | None
    worse: list = field(default_factory=list)
    better: list = field(default_factory=list)

    def to_dict(self, key_fields=KEY_FIELDS):
        def brief(record):
            return None if record is None else {"status": record.get("status"), "max_ulp": record.get("max_ulp")}
        return {**dict(zip(key_fields, self.key)), "old": brief(self.old), "new": brief(self.new),
                "worse": self.worse, "better": self.better}


@dataclass
class ReportDiff:
    regressions: list
    improvements: list
    added: list
    removed: list
    matched: int
    #: one line per way the two reports were made differently (empty across one report)
    warnings: list = field(default_factory=list)
    #: the two columns compared by compare_across, else None
    across: tuple | None = None

    @property
    def key_fields(self):
        return KEY_FIELDS if self.across is None else ACROSS_KEY_FIELDS

    def sections(self):
        return {"regressions": self.regressions, "improvements": self.improvements,
                "added": self.added, "removed": self.removed}

    def section_titles(self):
        """What each section is called in the text and Markdown output."""
        if self.across is None:
            return {name: name.capitalize() for name in self.sections()}
        a, b = self.across
        return {"regressions": f"Worse in {b} than in {a}", "improvements": f"Better in {b} than in {a}",
                "added": f"Only in {b}", "removed": f"Only in {a}"}

    def to_dict(self):
        data = {"matched": self.matched, "warnings": list(self.warnings)}
        if self.across is not None:
            data["across"] = list(self.across)
        return {**data, **{name: [change.to_dict(self.key_fields) for change in changes]
                           for name, changes in self.sections().items()}}


def backend_column(name, variant=None):
    """The column of a record or of a backends entry: the backend's name, and its variant
    in brackets if it has one (``torch[compile]``)."""
    return f"{name}[{variant}]" if variant else name


def records_by_key(report):
    """(column, function, format, check) -> record; ValueError if a key appears twice,
    since a diff could not tell which of the two to compare."""
    records = {}
    for record in report.get("results", []):
        column = backend_column(record.get("backend"), record.get("variant"))
        key = (column, *(record.get(name) for name in KEY_FIELDS[1:]))
        if key in records:
            raise ValueError(f"the report has two records for {' / '.join(map(str, key))}")
        records[key] = record
    return records


def _field_value(report, path):
    value = report
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _shown(value):
    return NOT_RECORDED if value is None else str(value)


def environment_warnings(old_report, new_report):
    """One line for each way the two reports were made differently: the seeds, case levels,
    refact versions, devices, platforms, CPUs and the versions of the backends in both.
    A value missing from a report counts as differing ("not recorded"): it may."""
    differences = [(what, _field_value(old_report, path), _field_value(new_report, path))
                   for what, path in ENVIRONMENT_FIELDS]

    def versions(report):
        return {backend_column(entry.get("name"), entry.get("variant")): entry.get("version")
                for entry in report.get("backends", [])}

    old_versions = versions(old_report)
    differences += [(f"{column} versions", old_versions[column], version)
                    for column, version in versions(new_report).items() if column in old_versions]
    return [f"the {what} differ ({_shown(before)} -> {_shown(after)}): a change may come from that, "
            "not from the code" for what, before, after in differences if before != after]


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
            relative_tolerance=ULP_RELATIVE_TOLERANCE, expected=None):
    """Regressions, improvements, added and removed records from ``old_report`` to ``new_report``,
    and the warnings of :func:`environment_warnings`.

    A record whose max ULP grows by at most max(absolute_tolerance, relative_tolerance * old)
    has not changed. ``expected(key)``, if given, says which records ``new_report`` should
    hold (see :func:`records_expected`): one of those missing from it is a regression,
    "record gone", not a removal. Raises ValueError if a report holds two records with the
    same key.
    """
    result = _compare_records(records_by_key(old_report), records_by_key(new_report),
                              absolute_tolerance, relative_tolerance, expected)
    result.warnings = environment_warnings(old_report, new_report)
    return result


def compare_across(report, first, second, absolute_tolerance=ULP_ABSOLUTE_TOLERANCE,
                   relative_tolerance=ULP_RELATIVE_TOLERANCE):
    """Column ``second`` of one report against column ``first`` (a backend, or
    ``name[variant]``), records matched on function, format and check: a regression is
    where ``second`` is worse than ``first``, by the rules of :func:`compare`.

    Raises ValueError for a column the report has no record of.
    """
    records = records_by_key(report)
    columns = list(dict.fromkeys(key[0] for key in records))
    for column in (first, second):
        if column not in columns:
            raise ValueError(f"the report has no records of backend {column!r}; "
                             f"it has {', '.join(columns) or 'none'}")
    def side(column):
        return {key[1:]: record for key, record in records.items() if key[0] == column}

    result = _compare_records(side(first), side(second), absolute_tolerance, relative_tolerance)
    result.across = (first, second)
    return result


def records_expected(report, functions=None, formats=None, checks=None):
    """The ``expected`` of :func:`compare` for a run that made ``report``: the keys of its
    backend columns (available or not) and of the functions, formats and checks it was
    asked for (None: all). A baseline record there that the run lacks was lost: a backend
    that no longer starts, a function or format it no longer provides."""
    columns = {backend_column(entry.get("name"), entry.get("variant")) for entry in report.get("backends", [])}
    chosen = (functions, formats, checks)

    def expected(key):
        column, *rest = key
        return column in columns and all(names is None or name in names for name, names in zip(rest, chosen))

    return expected


def _compare_records(old_records, new_records, absolute_tolerance, relative_tolerance, expected=None):
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
    gone = [key for key in old_records if key not in new_records]
    regressions += [Change(key, old_records[key], None, ["record gone"]) for key in gone
                    if expected is not None and expected(key)]
    removed = [Change(key, old_records[key], None) for key in gone if expected is None or not expected(key)]
    matched = sum(1 for key in new_records if key in old_records)
    return ReportDiff(regressions, improvements, added, removed, matched)


# --------------------------------------------------------------------------- rendering

def _before_after(change, describe):
    if change.old is None or change.new is None:  # added or removed: one side only
        return describe(change.new if change.old is None else change.old)
    before, after = describe(change.old), describe(change.new)
    return before if before == after else f"{before} -> {after}"


def change_cells(change, across=None):
    """The row of one change, computed once for the text and the Markdown tables."""
    if change.old is None:
        why = "new record" if across is None else f"only in {across[1]}"
    elif change.new is None:
        why = "record gone" if across is None else f"only in {across[0]}"
    else:
        why = "; ".join(change.worse + change.better)
    return (*(str(part) for part in change.key),
            _before_after(change, lambda record: str(record.get("status"))),
            _before_after(change, lambda record: format_number(record.get("max_ulp"))),
            why)


def headline(result):
    counts = ", ".join(f"{name}: {len(changes)}" for name, changes in result.sections().items())
    return f"{counts} ({result.matched} records matched)"


def _title(result):
    return "refact diff" if result.across is None else f"refact diff --across {' '.join(result.across)}"


def _table(result, name):
    """(title, header, rows) of one section."""
    rows = [change_cells(change, result.across) for change in result.sections()[name]]
    return result.section_titles()[name], result.key_fields + CHANGE_HEADER, rows


def _tables(result):
    """(title, header, rows) of each section that has changes."""
    return [_table(result, name) for name, changes in result.sections().items() if changes]


def _text_table(rows):
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def section_text(title, header, rows):
    """One section of the text output: its title line and its aligned table."""
    return [f"{title}:"] + _text_table([header] + rows)


def render_text(result):
    lines = [f"{_title(result)}: {headline(result)}"]
    lines += [f"warning: {warning}" for warning in result.warnings]
    for table in _tables(result):
        lines += [""] + section_text(*table)
    return "\n".join(lines) + "\n"


def baseline_lines(result, baseline_name):
    """What ``refact conform --baseline`` prints after its run: how many records regressed
    against the baseline, the warnings, and the regressions' table."""
    lines = [f"{len(result.regressions)} regression(s) against {baseline_name}"]
    lines += [f"warning: {warning}" for warning in result.warnings]
    if result.regressions:
        lines += section_text(*_table(result, "regressions"))
    return lines


def render_markdown(result, old_name="old", new_name="new"):
    """The diff as Markdown; ``old_name`` and ``new_name`` are the reports' names (across
    one report, ``old_name`` names it)."""
    compared = (f"{escape_markdown(old_name)} -> {escape_markdown(new_name)}" if result.across is None
                else f"{escape_markdown(result.across[1])} against {escape_markdown(result.across[0])} "
                     f"in {escape_markdown(old_name)}")
    lines = [f"# refact diff: {compared}", "", f"**{escape_markdown(headline(result))}**", ""]
    for warning in result.warnings:
        lines += [f"**Warning:** {escape_markdown(warning)}", ""]
    for title, header, rows in _tables(result):
        lines += [f"## {escape_markdown(title)}", ""] + markdown_table(header, rows) + [""]
    return "\n".join(lines)

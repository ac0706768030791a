"""The JUnit XML report: a testsuite per backend column, a testcase per record.

A CI's test viewer shows a fail as a failure (its message, first worst point and
classes), an error as an error, a skip as skipped and a convention as passed with its
detail in system-out. Every testcase has a ``time``: the record's ``seconds`` when the
runner measured it, else 0; a testsuite's time is the sum of its testcases'.
"""

import math
import xml.etree.ElementTree as ET

from refact.conformance.report.model import column_name, record_detail, records_by_column, spell_control_characters

__all__ = ["render_junit", "record_seconds"]


def _xml_text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return spell_control_characters(value)


def record_seconds(record):
    """The seconds a record took, from its optional ``seconds`` field; 0 when not measured."""
    seconds = record.get("seconds")
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0:
        return float(seconds)
    return 0.0


def _time(seconds):
    return f"{seconds:.3f}"


def _detail_text(detail):
    lines = list(detail.lines)
    for name, summary, reference, points, distance in detail.conventions:
        lines.append(f"convention {name}" + (f": {summary}" if summary else "")
                     + f"; covers {points} points, measured {distance} ULP from the truth"
                     + (f" (see {reference})" if reference else ""))
    if detail.worst:
        lines.append("worst inputs:")
        lines += [f"  input {row.input} (hex {row.input_hex}) -> output {row.output}, expected {row.expected}, "
                  f"{row.ulp} ULP" + (f" [{row.kind}]" if row.kind else "") for row in detail.worst]
    return "\n".join(lines)


def _first_worst_summary(detail):
    if not detail.worst:
        return ""
    row = detail.worst[0]
    return (f"worst: input {row.input_hex} -> {row.output}, expected {row.expected} ({row.ulp} ULP"
            + (f", {row.kind}" if row.kind else "") + ")")


def _outcome(testcase, record):
    status = record.get("status")
    detail = record_detail(record)
    if status == "fail":
        message = "; ".join(part for part in (record.get("severity"), record.get("message"),
                                              _first_worst_summary(detail)) if part)
        element = ET.SubElement(testcase, "failure", message=_xml_text(message or "fail"), type="fail")
        element.text = _xml_text(_detail_text(detail))
    elif status == "error":
        element = ET.SubElement(testcase, "error", message=_xml_text(record.get("message") or "error"), type="error")
        element.text = _xml_text(_detail_text(detail))
    elif status == "skip":
        ET.SubElement(testcase, "skipped", message=_xml_text(record.get("message") or "skipped"))
    elif status == "convention":
        ET.SubElement(testcase, "system-out").text = _xml_text(_detail_text(detail))


def _counts(records):
    statuses = [record.get("status") for record in records]
    return {"tests": str(len(records)), "failures": str(statuses.count("fail")),
            "errors": str(statuses.count("error")), "skipped": str(statuses.count("skip")),
            "time": _time(math.fsum(record_seconds(record) for record in records))}


def _suite(parent, column, entry, records, timestamp):
    suite = ET.SubElement(parent, "testsuite", name=_xml_text(f"refact.{column}"), **_counts(records))
    if timestamp:
        suite.set("timestamp", _xml_text(timestamp))
    known = [key for key in ("version", "device", "available", "error") if entry.get(key) is not None]
    if known:  # some JUnit schemas reject an empty <properties>
        properties = ET.SubElement(suite, "properties")
        for key in known:
            ET.SubElement(properties, "property", name=key, value=_xml_text(entry[key]))
    for record in records:
        testcase = ET.SubElement(suite, "testcase",
                                 classname=_xml_text(f"refact.{column_name(record)}.{record.get('function', '?')}"),
                                 name=_xml_text(f"{record.get('format', '?')}.{record.get('check', '?')}"),
                                 time=_time(record_seconds(record)))
        _outcome(testcase, record)


def render_junit(report):
    root = ET.Element("testsuites", name="refact conformance", **_counts(report.get("results", [])))
    for column, (entry, records) in records_by_column(report).items():
        _suite(root, column, entry, records, report.get("created"))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

"""pytest plugin: the conformance checks as ordinary tests in a user's own suite.

    pytest --refact-backend torch [--refact-function sigmoid] [--refact-format float32]
           [--refact-check accuracy] [--refact-cases quick|default|full] [--refact-device cpu]

Each backend x function x format x check becomes one test item named like
``refact[torch-sigmoid-float32-accuracy]``: ``fail`` and ``error`` records fail the test
(with the worst input in the message), ``skip`` records skip it, ``pass`` and
``convention`` pass (a convention is printed in the test's report section). The checks
of one backend run once, on the first of its items, exactly as ``refact conform`` runs
them. Without ``--refact-backend`` the plugin adds nothing and imports nothing heavy.
"""

import pytest

_OPTIONS = ("backend", "function", "format", "check")


def pytest_addoption(parser):
    group = parser.getgroup("refact", "refact conformance checks")
    for name in _OPTIONS:
        group.addoption(f"--refact-{name}", action="append", default=[], metavar="NAME",
                        help=f"refact: {name} to check (repeatable or comma-separated)")
    group.addoption("--refact-cases", default="quick", choices=("quick", "default", "full"),
                    help="refact: size of the case sets (default: quick)")
    group.addoption("--refact-device", default="cpu", help="refact: device (default: cpu)")


def _chosen(config, name):
    return [v.strip() for text in config.getoption(f"refact_{name}") for v in text.split(",")
            if v.strip()]


class _Records:
    """Runs the checks of one backend once and hands out its records."""

    def __init__(self, config):
        self.config = config
        self.by_backend = {}

    def get(self, backend, function, fmt, check):
        if backend not in self.by_backend:
            from refact.conformance.run.runner import run_conformance

            report = run_conformance(
                [backend], _chosen(self.config, "function") or None,
                _chosen(self.config, "format") or None, _chosen(self.config, "check") or None,
                level=self.config.getoption("refact_cases"),
                device=self.config.getoption("refact_device"))
            (entry,) = report["backends"]
            self.by_backend[backend] = (entry, {
                (r["function"], r["format"], r["check"]): r for r in report["results"]})
        entry, records = self.by_backend[backend]
        if not entry["available"]:
            raise RefactCheckError(f"backend {backend} is not available: {entry['error']}")
        return records.get((function, fmt, check))


class RefactCheckError(Exception):
    """A conformance record with status fail or error."""


class RefactItem(pytest.Item):
    def __init__(self, *, records, backend, function, fmt, check, **kwargs):
        super().__init__(**kwargs)
        self.records, self.backend, self.function, self.fmt, self.check = (
            records, backend, function, fmt, check)

    def runtest(self):
        record = self.records.get(self.backend, self.function, self.fmt, self.check)
        if record is None:
            pytest.skip(f"{self.backend} produced no {self.check} record for {self.function} {self.fmt}")
        if record["status"] == "skip":
            pytest.skip(record["message"])
        if record["status"] in ("fail", "error"):
            raise RefactCheckError(_describe(record))
        if record["status"] == "convention":
            c = record["convention"]
            self.add_report_section("call", "refact", f"convention {c['name']}: {c['summary']} ({c['reference']})")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, RefactCheckError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return "refact", None, self.name


def _describe(record):
    lines = [f"{record['status']}: {record['backend']} {record['function']} {record['format']} "
             f"{record['check']}: {record['message']}"]
    if record.get("max_ulp") is not None:
        lines.append(f"max {record['max_ulp']:.4g} ULP (budget {record['budget_ulp']})")
    for worst in record.get("worst", [])[:3]:
        lines.append(f"  input {worst['input_hex']} -> {worst['output']!r}, "
                     f"expected {worst['expected']!r} ({worst['ulp']} ULP)")
    return "\n".join(lines)


def pytest_collection_modifyitems(session, config, items):
    backends = _chosen(config, "backend")
    if not backends:
        return
    from refact.conformance.truth.catalog import NAMES
    from refact.conformance.run.records import CHECKS

    functions = _chosen(config, "function") or list(NAMES)
    formats = _chosen(config, "format") or ["float64", "float32", "float16", "bfloat16"]
    checks = _chosen(config, "check") or list(CHECKS)
    records = _Records(config)
    for backend in backends:
        for function in functions:
            for fmt in formats:
                for check in checks:
                    items.append(RefactItem.from_parent(
                        session, name=f"refact[{backend}-{function}-{fmt}-{check}]",
                        records=records, backend=backend, function=function, fmt=fmt, check=check))

"""pytest plugin: the conformance checks as ordinary tests in a user's own suite.

    pytest --refact-backend torch [--refact-function sigmoid] [--refact-format float32]
           [--refact-check accuracy] [--refact-cases quick|default|full] [--refact-device cpu]

Each backend x function x format x check becomes one test item, collected (and counted,
listed by ``--collect-only``, selected by ``-k``, ``--deselect`` and ``--lf``) like any
other test, under node ids a user can pass back on the command line::

    refact::torch::sigmoid::float32-accuracy

``refact::torch`` or ``refact::torch::sigmoid`` select every item below them, and a node
id alone names its backend (``pytest refact::torch::sigmoid::float32-accuracy`` needs no
``--refact-backend``). A variant (``--refact-backend torch[compile]``) is the item's
parameter: ``refact::torch::sigmoid::float32-accuracy[compile]``. In JUnit XML an item's
classname is ``refact.torch.sigmoid`` and its name ``float32-accuracy`` (or
``float32-accuracy[compile]``).

``fail`` and ``error`` records fail the test, with the record's message, statistics,
failure classes and its worst points (input in decimal and hex, output, the correctly
rounded truth, ULP error and failure class); ``skip`` records skip it; ``pass`` and
``convention`` pass (a convention is printed in the test's report section). The checks of
one backend run once, when its first item runs, exactly as ``refact conform`` runs them,
for the functions, formats and checks of the items left after selection. An unknown
backend, variant, function, format or check, or a ``refact::`` node id that names no item,
is a usage error naming the option (or the id) and the value, before anything is collected.
Without ``--refact-backend`` or a ``refact::`` node id the plugin adds nothing and imports
nothing heavy.
"""

from types import SimpleNamespace

import pytest

ROOT = "refact"  # the first part of every node id: what a user types to select them
SEPARATOR = "::"
OPTIONS = ("backend", "function", "format", "check")
ROW_ELEMENTS = 8  # a worst point's row longer than this shows its ends and its length
PLAN = pytest.StashKey()
RECORDS = pytest.StashKey()


def pytest_addoption(parser):
    group = parser.getgroup("refact", "refact conformance checks")
    for name in OPTIONS:
        group.addoption(f"--refact-{name}", action="append", default=[], metavar="NAME",
                        help=f"refact: {name} to check (repeatable or comma-separated)")
    group.addoption("--refact-cases", default="quick", choices=("quick", "default", "full"),
                    help="refact: size of the case sets (default: quick)")
    group.addoption("--refact-device", default="cpu", help="refact: device (default: cpu)")


def _chosen(config, name):
    return [v.strip() for text in config.getoption(f"refact_{name}") for v in text.split(",")
            if v.strip()]


def _is_selection(argument):
    return argument.startswith(ROOT + SEPARATOR)


def _item_id(backend, function, fmt, check):
    """``refact::torch::sigmoid::float32-accuracy``; a variant named as one is the item's
    parameter, as pytest names a parametrized test (``...::float32-accuracy[compile]``),
    so JUnit's classname stays ``refact.torch.sigmoid``."""
    from refact.backends import split_variant

    base, variant = split_variant(backend)
    return SEPARATOR.join((ROOT, base, function, f"{fmt}-{check}" + (f"[{variant}]" if variant else "")))


def _backend_of(selection):
    """The backend a ``refact::`` node id names: ``torch``, or ``torch[compile]`` for an
    item id with the parameter ``[compile]``."""
    from refact.backends import variant_name

    parts = selection.split(SEPARATOR)
    variant = None
    if len(parts) > 3 and parts[3].endswith("]"):
        variant = parts[3].partition("[")[2][:-1]
    return variant_name(parts[1], variant)


def _selects(selection, nodeid):
    """Whether node id ``selection`` (given on the command line) is ``nodeid``, one of its
    parents or one of its children (an item's id without its parameter selects it in
    every variant asked for, as pytest's id of a parametrized test does)."""
    return (selection == nodeid or nodeid.startswith((selection + SEPARATOR, selection + "["))
            or selection.startswith(nodeid + SEPARATOR))


class Plan:
    """What the command line asks for: backends, functions, formats, checks (all
    validated) and the ``refact::`` node ids it names."""

    def __init__(self, backends, functions, formats, checks, selections):
        self.backends, self.functions, self.formats, self.checks = (
            backends, functions, formats, checks)
        self.selections = selections

    def item_ids(self):
        return [_item_id(b, f, fmt, c) for b in self.backends for f in self.functions
                for fmt in self.formats for c in self.checks]

    def wanted(self, nodeid):
        return not self.selections or any(_selects(s, nodeid) for s in self.selections)


def _validated(option, values, allowed):
    for value in values:
        if value not in allowed:
            raise pytest.UsageError(f"--refact-{option}: unknown {option} {value!r}; "
                                    f"expected one of {', '.join(allowed)}")
    return values


def _plan(config):
    """The plan of this run, or None when it asks for no refact check. Raises
    pytest.UsageError for a name refact does not know, before anything is collected."""
    selections = [a for a in config.args if _is_selection(a)]
    backends = _chosen(config, "backend")
    if not backends and not selections:
        for option in OPTIONS[1:]:
            if _chosen(config, option):
                raise pytest.UsageError(f"--refact-{option} needs --refact-backend "
                                        f"(or a {ROOT}{SEPARATOR}BACKEND node id)")
        return None
    from refact.backends import FORMATS, target_of
    from refact.conformance.run.records import CHECKS
    from refact.conformance.truth.catalog import NAMES

    # where the backends come from: the option, or else the node ids (each names its own)
    named = {name: "--refact-backend" for name in backends} or {
        _backend_of(selection): selection for selection in reversed(selections)}
    for name, source in named.items():
        try:
            target_of(name)  # reads metadata only: no framework is imported here
        except ValueError as error:
            raise pytest.UsageError(f"{source}: {error}") from None
    backends = backends or list(dict.fromkeys(_backend_of(s) for s in selections))
    plan = Plan(backends,
                _validated("function", _chosen(config, "function") or list(NAMES), list(NAMES)),
                _validated("format", _chosen(config, "format") or list(FORMATS), list(FORMATS)),
                _validated("check", _chosen(config, "check") or list(CHECKS), list(CHECKS)),
                selections)
    item_ids = plan.item_ids()
    for selection in selections:
        if not any(_selects(selection, nodeid) for nodeid in item_ids):
            raise pytest.UsageError(
                f"{selection}: no such refact check; its ids are "
                f"{ROOT}{SEPARATOR}BACKEND{SEPARATOR}FUNCTION{SEPARATOR}FORMAT-CHECK, "
                f"e.g. {item_ids[0]}, for the backends, functions, formats and checks asked for")
    return plan


def pytest_configure(config):
    plan = _plan(config)
    if plan is None:
        return
    # pytest would look for a file called "refact": the node ids are ours to collect
    config.args[:] = [a for a in config.args if not _is_selection(a)]
    config.stash[PLAN] = plan
    config.stash[RECORDS] = Records(config)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """The session's collection gains one collector, ``refact``, beside the paths it
    collects, so its items are collected, counted and selected like every other test."""
    report = yield
    plan = collector.config.stash.get(PLAN, None)
    if isinstance(collector, pytest.Session) and plan is not None and report.passed:
        report.result.append(RefactSuite.from_parent(collector, name=ROOT, nodeid=ROOT))
    return report


class RefactCollector(pytest.Collector):
    """A level of the refact tree: refact, a backend (its variants' items share it), a
    function; its children are those the command line's node ids (if any) select."""

    def reportinfo(self):
        return self.config.rootpath / ROOT, None, self.nodeid


class RefactSuite(RefactCollector):
    def collect(self):
        from refact.backends import split_variant

        plan = self.config.stash[PLAN]
        bases = dict.fromkeys(split_variant(name)[0] for name in plan.backends)
        return [RefactBackend.from_parent(self, name=base) for base in bases
                if plan.wanted(f"{self.nodeid}{SEPARATOR}{base}")]


class RefactBackend(RefactCollector):
    def collect(self):
        plan = self.config.stash[PLAN]
        return [RefactFunction.from_parent(self, name=function) for function in plan.functions
                if plan.wanted(f"{self.nodeid}{SEPARATOR}{function}")]


class RefactFunction(RefactCollector):
    def collect(self):
        plan = self.config.stash[PLAN]
        items = []
        for backend in plan.backends:
            for fmt in plan.formats:
                for check in plan.checks:
                    nodeid = _item_id(backend, self.name, fmt, check)
                    if nodeid.startswith(self.nodeid + SEPARATOR) and plan.wanted(nodeid):
                        items.append(RefactItem.from_parent(
                            self, name=nodeid.rpartition(SEPARATOR)[2], backend_name=backend,
                            function_name=self.name, format_name=fmt, check_name=check))
        return items


class RefactCheckFailed(Exception):
    """A conformance record with status fail or error, or a backend that did not start."""


class FailureText:
    """A failed item's report: the whole text in the failures section, its first line in
    the short summary and JUnit's message. (A plain string would be printed whole in the
    short summary as well wherever pytest believes it runs on CI.)"""

    def __init__(self, text):
        self.text = text
        self.reprcrash = SimpleNamespace(message=text.splitlines()[0] if text else "")

    def toterminal(self, writer):
        for line in self.text.splitlines():
            writer.line(line)

    def __str__(self):
        return self.text


class RefactItem(pytest.Item):
    """One record: backend x function x format x check. (Its attributes are not called
    ``function`` or the like: pytest reads those names on items.)"""

    def __init__(self, *, backend_name, function_name, format_name, check_name, **kwargs):
        super().__init__(**kwargs)
        self.backend_name, self.function_name = backend_name, function_name
        self.format_name, self.check_name = format_name, check_name

    def runtest(self):
        record = self.config.stash[RECORDS].record_of(self)
        if record is None:
            pytest.skip(f"{self.backend_name} produced no {self.check_name} record for "
                        f"{self.function_name} {self.format_name}")
        if record["status"] == "skip":
            pytest.skip(record["message"])
        if record["status"] in ("fail", "error"):
            raise RefactCheckFailed(failure_text(record))
        if record["status"] == "convention":
            self.add_report_section("call", "refact", failure_text(record))

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, RefactCheckFailed):
            return FailureText(str(excinfo.value))
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.config.rootpath / ROOT, None, self.nodeid


class Records:
    """Runs the checks of one backend once, for the items of it left after selection,
    and hands out its records."""

    def __init__(self, config):
        self.config = config
        self.by_backend = {}

    def record_of(self, item):
        backend = item.backend_name
        if backend not in self.by_backend:
            self.by_backend[backend] = self._run(backend, [
                i for i in item.session.items
                if isinstance(i, RefactItem) and i.backend_name == backend])
        entry, records = self.by_backend[backend]
        if not entry["available"]:
            raise RefactCheckFailed(f"backend {backend} is not available: {entry['error']}")
        return records.get((item.function_name, item.format_name, item.check_name))

    def _run(self, backend, items):
        from refact.conformance.run.runner import run_conformance

        def used(attribute):
            return list(dict.fromkeys(getattr(i, attribute) for i in items))

        report = run_conformance(
            [backend], used("function_name"), used("format_name"), used("check_name"),
            level=self.config.getoption("refact_cases"),
            device=self.config.getoption("refact_device"))
        (entry,) = report["backends"]
        return entry, {(r["function"], r["format"], r["check"]): r for r in report["results"]}


def failure_text(record):
    """What a failing item shows, in the words of the reports (report/model.py): the
    record's title, message, statistics (the budget only where it has one), failure
    classes and conventions, then its worst points: input in decimal and in hex, output,
    the correctly rounded truth, ULP error and the point's failure class."""
    from refact.conformance.report.model import record_detail

    detail = record_detail(record, elements=ROW_ELEMENTS)
    lines = [detail.title, *detail.lines]
    for name, summary, reference, points, max_ulp in detail.conventions:
        lines.append(f"convention {name}" + (f": {summary}" if summary else "")
                     + (f" (see {reference})" if reference else "")
                     + f"; {points} points, measured {max_ulp} ULP from the truth")
    if detail.worst:
        lines.append("worst points:")
    for row in detail.worst:
        lines.append(f"  input {row.input} (hex {row.input_hex}) -> output {row.output}, "
                     f"expected {row.expected}, {row.ulp} ULP" + (f" [{row.kind}]" if row.kind else ""))
    return "\n".join(lines)

"""The result record of the ``refact.report/1`` contract, built in one place.

Every check, the properties and the sweeps make their records with :func:`record`;
the statuses, the checks and the counted failure classes are defined here (the
classes by the ruler, :data:`refact.conformance.numbers.ruler.ALL_CLASSES`), and
:func:`report_envelope` puts records into a whole report. The writers and
``refact diff`` (:mod:`refact.conformance.report`) read these same names.
"""

import datetime
import math
import platform
from dataclasses import dataclass, field

from refact.conformance.numbers.formats import bits_hex
from refact.conformance.numbers.ruler import ALL_CLASSES, UNDECIDED, classify, ulp_error, ulp_errors

__all__ = [
    "SCHEMA", "CHECKS", "STATUSES", "ALL_CLASSES", "WORST", "Judgement", "record", "convention_field",
    "report_envelope", "input_hex", "plain", "percentile", "printable", "printable_fields",
    "SEVERITIES", "CRITICAL_CLASSES", "CRITICAL_ULP", "severity_of",
]

SCHEMA = "refact.report/1"
CHECKS = ("accuracy", "special_values", "properties", "dtype", "gradient")
STATUSES = ("pass", "fail", "convention", "error", "skip")
#: Worst points kept in a record.
WORST = 5
#: Record severities, worst first (DESIGN.md); None for a record with nothing to weigh.
SEVERITIES = ("critical", "major", "minor")
#: Classes of a silent wrong number in kind: a NaN or an infinity where a finite value is
#: due (or the reverse), a normal result lost to 0 or inf, a number where none exists.
CRITICAL_CLASSES = ("spurious_nan", "spurious_inf", "missing_inf", "premature_underflow",
                    "premature_overflow", "missing_nan")
#: An error this large (in ULPs) is critical whatever its budget: the digits are gone.
CRITICAL_ULP = 1e3


def severity_of(status, classes, max_ulp, budget, flush_covered=False):
    """The severity of a record: ``critical`` (a class of :data:`CRITICAL_CLASSES`, or
    an error of :data:`CRITICAL_ULP` or more), ``major`` (over the budget: a larger
    error, a flushed subnormal, a refusal where a number was due, a wrong dtype),
    ``minor`` (only a wrong sign of zero; or, for a convention record, a flush to zero
    the backend documents), else None (a pass, a skip, an error of the run)."""
    if status == "convention":
        return "minor" if flush_covered else None
    if status != "fail":
        return None
    if any(classes.get(name) for name in CRITICAL_CLASSES) or (
            max_ulp is not None and max_ulp >= CRITICAL_ULP):
        return "critical"
    over = max_ulp is not None and budget is not None and max_ulp > budget
    if over or classes.get("flush_to_zero") or not classes.get("wrong_sign_zero"):
        return "major"
    return "minor"


def input_hex(value, fmt):
    if isinstance(value, (tuple, list)):
        return [input_hex(v, fmt) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        return bits_hex(value, fmt)
    except Exception:
        return float(value).hex()


def plain(value):
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value


#: classes an error within the budget turns back into an ordinary point
_SIZED_CLASSES = ("flush_to_zero", "missing_inf")


@dataclass
class Judgement:
    """Running tally of one check: ULP errors of ordinary points, class counts, the
    worst points, and the points a convention covers."""

    fmt: object
    budget: float
    conventions: tuple = ()
    ulps: list = field(default_factory=list)
    classes: dict = field(default_factory=lambda: dict.fromkeys(ALL_CLASSES, 0))
    failing: int = 0
    convention_points: dict = field(default_factory=dict)
    convention_ulp: dict = field(default_factory=dict)
    worst: list = field(default_factory=list)
    points: int = 0
    refused: int = 0
    xs: list = field(default_factory=list)

    def add(self, point, y, rounded, exact, budget=None, options=None, x=None, error=None):
        """Judge one output value ``y`` of ``point`` against the truth (``exact`` None
        when undecided); return the ULP error or the class name. ``error``: the ULP
        error when the caller measured it (then the point is an ordinary one)."""
        budget = self.budget if budget is None else budget
        self.points += 1
        kind = None if error is not None else classify(y, exact, self.fmt)
        if kind == UNDECIDED:
            self.classes[UNDECIDED] += 1
            return kind
        if kind in _SIZED_CLASSES and math.isfinite(y):
            # a near-tie at the subnormal boundary (0 for 0.5000x of the smallest
            # subnormal) or at the overflow threshold is an ULP error, as in the engine
            sized = ulp_error(y, exact, self.fmt)
            if sized <= budget:
                kind, error = None, sized
        if error is None:
            error = ulp_error(y, exact, self.fmt) if kind is None else math.inf
        if kind is None:
            self.ulps.append(error)
            if x is not None:
                self.xs.append((x, error))
        if kind is None and error <= budget:
            return error
        convention = next((c for c in self.conventions
                           if c.applies(point, exact, self.fmt.name, options)), None)
        if convention is not None:
            key = convention.name
            self.convention_points[key] = self.convention_points.get(key, 0) + 1
            self.convention_ulp[key] = max(self.convention_ulp.get(key, 0.0), error)
            if kind is None:
                self.ulps.pop()  # shown with the convention, not in the backend's own error
                if x is not None:
                    self.xs.pop()
        else:
            self.failing += 1
            if kind is not None:
                self.classes[kind] += 1
        self._keep_worst(point, y, rounded, error, kind, convention)
        return kind or error

    def add_many(self, values):
        """Judge many ``(point, y, rounded, exact, pair, x)`` at once, ``pair`` the truth
        as two floats (:func:`errors.float_pair`) or None. The ordinary values (finite,
        nonzero, with a finite rounded truth) inside the budget are measured in numpy;
        a figure within 2**-40 of a threshold (the budget, 1/2, 1) is recomputed
        exactly, and every other value goes through :meth:`add`, one at a time."""
        import numpy as np

        fast, slow = [], []
        for value in values:
            _, y, rounded, _, pair, _ = value
            ordinary = pair is not None and 0.0 < abs(y) < math.inf and abs(rounded) < math.inf
            (fast if ordinary else slow).append(value)
        if fast:
            errors = ulp_errors(np.array([v[1] for v in fast], dtype=np.float64),
                                np.array([v[4][0] for v in fast]), np.array([v[4][1] for v in fast]),
                                self.fmt)
            near = np.zeros(len(fast), dtype=bool)
            for threshold in {0.5, 1.0, self.budget}:
                near |= np.abs(errors - threshold) <= threshold * 2.0 ** -40
            for i in np.flatnonzero(near).tolist():
                errors[i] = ulp_error(fast[i][1], fast[i][3], self.fmt)
            inside = errors <= self.budget
            self.points += int(inside.sum())
            self.ulps.extend(errors[inside].tolist())
            self.xs.extend((v[5], e) for v, e, ok in zip(fast, errors.tolist(), inside.tolist())
                           if ok and v[5] is not None)
            for i in np.flatnonzero(~inside).tolist():
                point, y, rounded, exact, _, x = fast[i]
                self.add(point, y, rounded, exact, x=x, error=float(errors[i]))
        for point, y, rounded, exact, _, x in slow:
            self.add(point, y, rounded, exact, x=x)

    def refuse(self, point, truth, message):
        """The backend raised at ``point``: fine where the value is undefined (NaN due,
        as for a NaN input), a failure where a number was due."""
        self.points += 1
        self.refused += 1
        if all(v != v for v in truth.values if v is not None):
            return
        self.failing += 1
        self.worst.append(((True, math.inf), {
            "input": plain(point), "input_hex": input_hex(point, self.fmt), "output": None,
            "expected": plain(truth.rounded), "ulp": None, "error": message}))
        self.worst.sort(key=lambda item: item[0], reverse=True)
        del self.worst[WORST:]

    def _keep_worst(self, point, y, rounded, error, kind, convention):
        rank = (convention is None, error)
        if len(self.worst) == WORST and rank <= self.worst[-1][0]:
            return  # would not make the list: its entry (hex of the whole point) is not built
        entry = {"input": plain(point), "input_hex": input_hex(point, self.fmt),
                 "output": y, "expected": rounded, "ulp": error}
        if kind:
            entry["class"] = kind
        if convention is not None:
            entry["convention"] = convention.name
        self.worst.append((rank, entry))
        self.worst.sort(key=lambda item: item[0], reverse=True)
        del self.worst[WORST:]


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def record(backend, function, fmt, check, judgement=None, status=None, message="",
           budget=None, classes_counted=None, flush_covered=False, **extra):
    """A result record of the report contract; status derived from the judgement
    unless given (``error``/``skip`` and checks that decide it themselves), severity
    (:func:`severity_of`) from its figures; ``flush_covered``: a convention that flushes
    subnormals covers some of its points."""
    classes = dict.fromkeys(ALL_CLASSES, 0)
    fields = {"points": 0, "max_ulp": None, "p99_ulp": None, "mean_ulp": None,
              "correctly_rounded": None, "within_1ulp": None, "worst": [], "convention": None}
    if judgement is not None:
        ulps = sorted(judgement.ulps)
        classes = judgement.classes
        fields.update(
            points=judgement.points,
            max_ulp=ulps[-1] if ulps else None,
            p99_ulp=percentile(ulps, 0.99),
            mean_ulp=(math.fsum(ulps) / len(ulps)) if ulps else None,
            correctly_rounded=(sum(u <= 0.5 for u in ulps) / judgement.points) if judgement.points else None,
            within_1ulp=(sum(u <= 1.0 for u in ulps) / judgement.points) if judgement.points else None,
            worst=[entry for _, entry in judgement.worst],
        )
        if judgement.convention_points:
            by_name = {c.name: c for c in judgement.conventions}
            flush_covered = flush_covered or any(getattr(by_name[n], "flushes", False)
                                                 for n in judgement.convention_points)
            fields["convention"] = convention_field([
                {"name": n, "summary": by_name[n].summary, "reference": by_name[n].reference,
                 "points": k, "max_ulp": judgement.convention_ulp[n]}
                for n, k in judgement.convention_points.items()])
        if status is None:
            status = "fail" if judgement.failing else ("convention" if judgement.convention_points else "pass")
            if status == "fail" and not message:
                message = failure_message(judgement)
            if judgement.refused:
                refused = f"raised on {judgement.refused} input(s)"
                message = f"{message}; {refused}" if message else refused
    fields.update(extra)
    if classes_counted is not None:
        classes = dict(classes_counted)
    severity = severity_of(status, classes, fields["max_ulp"], budget, flush_covered)
    # "variant" is the runner's to set: it alone knows which variant its worker ran
    return {"backend": backend, "variant": None, "function": function, "format": fmt, "check": check,
            "status": status, "severity": severity, "budget_ulp": budget, "message": message,
            "classes": classes, **fields}


def failure_message(judgement):
    parts = [f"{judgement.failing} of {judgement.points} values outside the budget of "
             f"{judgement.budget:g} ULP"]
    named = [f"{n} {k}" for n, k in judgement.classes.items() if k and n != UNDECIDED]
    if named:
        parts.append("failure classes: " + ", ".join(named))
    return "; ".join(parts)


def convention_field(entries):
    """The record's ``convention`` from ``[{name, summary, reference, points, max_ulp}]``:
    the convention covering the most points, with every one of them under ``all``."""
    if not entries:
        return None
    main = max(entries, key=lambda e: e["points"])
    return {"name": main["name"], "summary": main["summary"], "reference": main["reference"],
            "points": sum(e["points"] for e in entries), "max_ulp": main["max_ulp"],
            "all": [{"name": e["name"], "points": e["points"], "max_ulp": e["max_ulp"]} for e in entries]}


def _cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def printable(text):
    """``text`` with what may not reach a report or a terminal escaped: control
    characters but newline and tab (an escape sequence in a plugin's name would redraw
    the user's terminal) and lone surrogates (which no UTF-8 report can hold) become
    ``\\x1b``, ``\\ud800``..."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in "\n\t" else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def printable_fields(value):
    """Every string in ``value`` (nested dicts and lists, keys included) made
    :func:`printable`."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_fields(k): printable_fields(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable_fields(v) for v in value]
    return value


def report_envelope(results, backends, seed=0, **environment):
    """A ``refact.report/1`` report around result records: versions, environment, the
    summary counted from the records. ``environment`` adds fields (cases, device ...).
    Every string in it is :func:`printable`: plugins' names, versions and messages reach
    the reports and the terminal only escaped."""
    import refact

    results, backends = printable_fields(list(results)), printable_fields(list(backends))
    summary = dict.fromkeys(STATUSES, 0)
    for r in results:
        summary[r["status"]] += 1
    return {
        "schema": SCHEMA,
        "refact_version": refact.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpu": _cpu(), "seed": int(seed), **environment},
        "backends": list(backends),
        "results": list(results),
        "summary": summary,
    }

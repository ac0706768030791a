"""The checks: one backend, one function, one format at a time, each giving one record.

A check sends its points to the backend through an :class:`Evaluator` (which batches
them into as few framework calls as their shapes allow, in the backend's worker
process), asks the oracle for the truth, and judges every output value the same way:

* a failure class of :func:`errors.classify` (NaN where a number was due, a spurious
  or missing infinity, a wrong sign of zero, a flushed or prematurely under/overflowed
  result) is counted as that class, never folded into a ULP figure;
* otherwise the value's ULP error against the exact truth is compared with the budget;
* a point outside the budget that a *documented* convention of the backend covers
  (its predicate says so) is a convention point: reported with the convention's name,
  reference and measured distance, not as a failure.

The record follows the ``refact.report/1`` contract of DESIGN.md.
"""

import math

from refact.conformance.truth.catalog import ORACLE, get_function
from refact.conformance.numbers.formats import FORMATS, get_format, is_representable, round_to_format
from refact.conformance.run.records import CHECKS, Judgement, convention_field, record
from refact.conformance.run.isolation import JobError
from refact.conformance.truth.oracle import derivative_truth, truth_many

__all__ = ["CHECKS", "Evaluator", "accuracy", "special_values", "dtype", "gradient"]

def _argument_kind(role):
    return {"class_index": "index", "temperature": "scalar"}.get(role, "array")


def _batch_key(spec, point):
    """Points batch into one call when their rows have the same length and their scalar
    parameters (a temperature: one value per call) are the same float."""
    return tuple(float(a).hex() if _argument_kind(p.role) == "scalar" else
                 len(a) if isinstance(a, tuple) else None
                 for p, a in zip(spec.parameters, point))


def _padded_size(n):
    """The power of two a batch of ``n`` points is padded to."""
    return 1 << (n - 1).bit_length()


class Evaluator:
    """The backend's outputs at catalog points, through a worker process.

    ``outputs(function, fmt, points)`` returns one tuple of floats per point (one value
    for a scalar output, the row for a row output) and the format of the results.
    """

    def __init__(self, worker):
        self.worker = worker

    def _jobs(self, op, function, fmt, points, options, cotangents=None):
        """``(indices, job)`` per batch of points. A job holds its batch's points and
        copies of its first up to a power of two (:func:`_padded_size`): a compiling
        framework (jax, XLA, torch.compile, JAX op by op) compiles once per shape, and
        the batches of the checks come in every size. The copies' results are dropped."""
        spec = get_function(function)
        groups = {}
        for index, point in enumerate(points):
            groups.setdefault(_batch_key(spec, point), []).append(index)
        for found in groups.values():
            indices = found + found[:1] * (_padded_size(len(found)) - len(found))
            arguments = []
            for i, parameter in enumerate(spec.parameters):
                kind = _argument_kind(parameter.role)
                values = [_as_list(points[j][i]) for j in indices]
                arguments.append((kind, values[0] if kind == "scalar" else values))
            job = {"op": op, "function": function, "format": fmt, "arguments": arguments,
                   "options": dict(options or {})}
            if cotangents is not None:
                job["cotangent"] = [_as_list(cotangents[j]) for j in indices]
            yield found, job

    def _answers(self, function, jobs):
        """``("ok", (values, format))`` or ``("error", message)`` per job, in one round trip."""
        answers, _ = self.worker.run({"op": "many", "function": function, "jobs": jobs})
        return answers

    def _run(self, op, function, fmt, points, options, cotangents=None):
        out = [None] * len(points)
        result_format = None
        batches = list(self._jobs(op, function, fmt, points, options, cotangents))
        answers = self._answers(function, [job for _, job in batches]) if batches else []
        for (indices, _), (status, payload) in zip(batches, answers):
            if status != "ok":
                raise JobError(payload, raised=status == "error")
            values, result_format = payload
            asked = _padded_size(len(indices))
            if not isinstance(values, list) or len(values) != asked:
                shape = len(values) if isinstance(values, list) else "a scalar"
                raise JobError(f"{function} returned {shape} results for a batch of {asked}")
            for j, value in zip(indices, values):
                out[j] = _checked(function, op, points[j], value, result_format)
        return out, result_format

    def outputs(self, function, fmt, points, options=None):
        return self._run("call", function, fmt, points, options)

    def outputs_or_refusals(self, function, fmt, points, options=None):
        """:meth:`outputs`, but when the batch call raises (a framework refusing one
        input, e.g. torch's BCE on a NaN probability), each point is asked alone and a
        point that raises gets ``None`` with the exception's message in ``refusals``."""
        try:
            outputs, result_format = self.outputs(function, fmt, points, options)
            return outputs, result_format, {}
        except JobError as error:
            if not error.raised or len(points) == 1:
                raise
        alone = [job for point in points for _, job in self._jobs("call", function, fmt, [point], options)]
        outputs, refusals, result_format = [], {}, None
        for index, (status, payload) in enumerate(self._answers(function, alone)):
            if status == "fatal":
                raise JobError(payload)
            if status == "ok":
                values, result_format = payload
                if not isinstance(values, list) or len(values) != 1:
                    raise JobError(f"{function} returned {len(values) if isinstance(values, list) else 'a scalar'} "
                                   "results for one point")
                outputs.append(_checked(function, "call", points[index], values[0], result_format))
            else:
                outputs.append(None)
                refusals[index] = payload
        if result_format is None:
            raise JobError(f"{function} raised on every input: {next(iter(refusals.values()))}",
                           raised=True)
        return outputs, result_format, refusals

    def vjp(self, function, fmt, points, cotangents, options=None):
        return self._run("grad", function, fmt, points, options, cotangents)


def _as_list(value):
    return list(value) if isinstance(value, tuple) else value


def _checked(function, op, point, value, result_format):
    """One point's result as a tuple of floats, after checking what a backend may not get
    away with: a value of the wrong shape (a softmax row cut short would otherwise be
    judged on its first entries only), of the wrong type (a string, a bool, None) or not
    a value of the format it claims (float64 numbers labelled float32)."""
    spec = get_function(function)
    if op == "grad" or spec.kind == "elementwise":  # shaped like the first argument
        row_due = isinstance(point[0], tuple)
        due = len(point[0]) if row_due else 1
    else:
        row_due, due = spec.vector_output, spec.output_size(point)
    values = tuple(value) if isinstance(value, list) else (value,)
    if isinstance(value, list) != row_due or len(values) != due:
        raise JobError(f"{function} returned {len(values)} values where {due} are due "
                       f"(input {_short(point)})")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise JobError(f"{function} returned {type(v).__name__} {_short(v)} where a number "
                           f"is due (input {_short(point)})")
    if result_format in FORMATS:
        for v in values:
            if not is_representable(float(v), result_format):
                raise JobError(f"{function} returned {float(v)!r}, which is not a {result_format} "
                               f"value, in a result it labels {result_format}")
    return tuple(float(v) for v in values)


def _short(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# -- the checks ---------------------------------------------------------------------------


def _truths(function, fmt, points, workers):
    return truth_many(function, points, fmt, workers=workers)


def accuracy(evaluator, backend, function, fmt, cases, truths, conventions, plot=None):
    """ULP error against the oracle on every case point. ``cases``: ``[(set, point)]``;
    ``truths``: the oracle's :class:`Truth` for each, in the same order."""
    spec = get_function(function)
    budget = spec.budgets[fmt]
    # Accuracy is measured over the domain: a point whose every value is undefined (NaN
    # due for a NaN-free input, e.g. logit(-1)) belongs to the special-value check, where
    # refusing it is judged on its own; in a batch it would make one refusal fail them all.
    kept = [(case, truth) for case, truth in zip(cases, truths)
            if _in_domain(spec, case[1]) and not _out_of_domain(case[1], truth)]
    cases = [case for case, _ in kept]
    truths = [truth for _, truth in kept]
    points = [point for _, point in cases]
    outputs, result_format, refusals = evaluator.outputs_or_refusals(function, fmt, points)
    fmt_obj = get_format(fmt)
    if any(0.0 < abs(y) < fmt_obj.smallest_normal for ys in outputs if ys for y in ys):
        # a flush-to-zero convention covers a zero only where the backend flushes: one
        # that returns a nonzero subnormal here does not (as the engine rules)
        conventions = [c for c in conventions if not getattr(c, "flushes", False)]
    judgement = Judgement(fmt_obj, budget, tuple(conventions))
    sets = {}
    values = []
    for index, ((set_name, point), truth, ys) in enumerate(zip(cases, truths, outputs)):
        sets[set_name] = sets.get(set_name, 0) + 1
        x = point[0] if spec.kind == "elementwise" else None
        if ys is None:
            judgement.refuse(point, truth, refusals[index])
            continue
        values.extend((point, y, rounded, exact, pair, x)
                      for y, (rounded, exact), pair in zip(ys, truth.elements, truth.float_pairs))
    judgement.add_many(values)
    if plot is not None and spec.kind == "elementwise":
        plot.extend(judgement.xs)
    result = record(backend, function, fmt, "accuracy", judgement, budget=budget,
                    case_sets=sets, result_format=result_format, refused=judgement.refused)
    return result, result_format


def _out_of_domain(point, truth):
    values = truth.values
    return (truth.decided and all(v != v for v in values if v is not None)
            and not _has_nan(point))


def _in_domain(spec, point):
    """Probabilities and labels lie in [0, 1] (or are NaN, which must propagate)."""
    return all(0.0 <= value <= 1.0 or value != value
               for parameter, value in zip(spec.parameters, point)
               if parameter.role in ("probability", "label"))


def _has_nan(arg):
    if isinstance(arg, (list, tuple)):
        return any(_has_nan(a) for a in arg)
    return isinstance(arg, float) and arg != arg


def special_values(evaluator, backend, function, fmt, conventions):
    """The catalog's special-value table, exactly: a value known exactly must come
    back exactly (either sign of a zero whose sign the mathematics leaves open);
    one the table leaves to the oracle must be within the budget."""
    spec = get_function(function)
    budget = spec.budgets[fmt]
    fmt_obj = get_format(fmt)
    rows = [s for s in spec.specials if all(_representable(a, fmt_obj) for a in s.args)]
    points = [tuple(tuple(a) if isinstance(a, (list, tuple)) else a for a in s.args) for s in rows]
    truths = truth_many(function, points, fmt)
    judgement = Judgement(fmt_obj, budget, tuple(conventions))
    # an empty row: shapes, not values; checked by the core's tests
    kept = [(special, point, truth) for special, point, truth in zip(rows, points, truths)
            if not any(isinstance(a, tuple) and not a for a in point)]
    if not kept:
        return record(backend, function, fmt, "special_values", judgement, budget=budget, refused=0)
    outputs, _, refusals = evaluator.outputs_or_refusals(function, fmt, [p for _, p, _ in kept])
    for index, ((special, point, truth), ys) in enumerate(zip(kept, outputs)):
        if ys is None:
            # Raising on an undefined value (as Python's math module does) is a refusal,
            # not a silent wrong number; raising where a number is due is a failure.
            judgement.refuse(point, truth, refusals[index])
            continue
        exact_required = special.expected is not ORACLE
        for y, (rounded, exact) in zip(ys, truth.elements):
            judgement.add(point, y, rounded, exact, budget=0.0 if exact_required else budget)
    return record(backend, function, fmt, "special_values", judgement, budget=budget,
                  refused=judgement.refused)


def _representable(arg, fmt):
    if isinstance(arg, (list, tuple)):
        return all(_representable(a, fmt) for a in arg)
    if not isinstance(arg, float) or math.isnan(arg) or math.isinf(arg):
        return True
    return round_to_format(arg, fmt) == arg


def dtype(backend, function, fmt, result_format, conventions=()):
    """A ``fmt`` input must give a ``fmt`` result. One that comes back in another format
    (wider, as numpy's float16 -> float64 for a ufunc without a float16 loop, or
    narrower) is a promotion: status ``convention`` where a convention of the backend
    declares it (``Convention.promotes``, with the framework's documentation), else
    ``fail``, "dtype not preserved: float16 -> float64".

    The accuracy of a promoted result is judged elsewhere, and in the input's format:
    the value the user gets (the wider one, not rounded back) against the exact truth,
    in ULPs of ``fmt``, as for any other result. So a float64 result of a float16 input
    is correctly rounded when it lies within half a float16 ULP of the truth, and its
    own extra digits neither earn nor cost anything: the promotion is this record's
    finding, not the accuracy record's."""
    if result_format == fmt:
        return record(backend, function, fmt, "dtype", status="pass", points=1,
                      message=f"{fmt} in, {fmt} out")
    promotion = f"dtype not preserved: {fmt} -> {result_format}"
    for convention in conventions:
        if (fmt, result_format) in convention.promotes:
            documented = convention_field([{"name": convention.name, "summary": convention.summary,
                                            "reference": convention.reference, "points": 1,
                                            "max_ulp": None}])
            return record(backend, function, fmt, "dtype", status="convention", points=1,
                          message=f"{promotion} (documented: {convention.name})",
                          convention=documented)
    return record(backend, function, fmt, "dtype", status="fail", points=1, message=promotion)


# -- gradients ----------------------------------------------------------------------------


def _cotangent(spec, point):
    # One cotangent per point: ones for scalar outputs (so the VJP is the derivative), a
    # fixed non-constant vector for rows (a constant one would hide softmax's VJP: its
    # product with the Jacobian is 0).
    if spec.vector_output:
        n = len(point[0])
        return tuple(float((i % 3) - 1) for i in range(n))
    return 1.0


def gradient(evaluator, backend, function, fmt, cases, limit=100):
    """The framework's autograd against the catalog's derivative, in ULPs of the true
    derivative, on the accuracy points (saturation and thresholds included) where the
    function is finite and differentiable."""
    spec = get_function(function)
    budget = spec.budgets[fmt]
    fmt_obj = get_format(fmt)
    points = []
    for _, point in cases:
        if all(_finite(a) for a in point) and _in_domain(spec, point):
            points.append(point)
        if len(points) == limit:
            break
    expected = []
    kept = []
    for point in points:
        cot = _cotangent(spec, point)
        try:
            truth = derivative_truth(spec, point, fmt_obj, cot)
        except (ValueError, ZeroDivisionError, OverflowError):
            continue  # not differentiable there (e.g. a kink of hard_sigmoid, p at 0 or 1)
        kept.append((point, cot))
        expected.append(truth)
    gradients, _ = evaluator.vjp(function, fmt, [p for p, _ in kept],
                                 [c if isinstance(c, tuple) else c for _, c in kept])
    judgement = Judgement(fmt_obj, budget)
    for (point, _), truth, gs in zip(kept, expected, gradients):
        for g, (rounded, exact) in zip(gs, truth):
            judgement.add(point, g, rounded, exact)
    return record(backend, function, fmt, "gradient", judgement, budget=budget)


def _finite(arg):
    if isinstance(arg, (list, tuple)):
        return all(_finite(a) for a in arg)
    return not isinstance(arg, float) or math.isfinite(arg)


# -- calls with options -------------------------------------------------------------------

#: The binding's declaration that a cross_entropy target may be class probabilities (an
#: input kind, not a keyword: the target's dtype tells the backend).
PROBABILITY_TARGET = "probability_target"
_SEVERITY_RANK = {"critical": 3, "major": 2, "minor": 1, None: 0}


def declared_options(function, backend):
    """A worker task: the options the backend's binding of ``function`` declares."""
    return sorted(backend.binding(function).options)


def option_label(function, options):
    """``cross_entropy[label_smoothing=0.1, reduction=mean]``: a call with options as
    the reports name it (a weight list as its values, a target kind by name)."""
    def shown(value):
        if isinstance(value, (list, tuple)):
            return "(" + ", ".join(shown(v) for v in value) + ")"
        return f"{value:g}" if isinstance(value, float) else str(value)
    inside = ", ".join(f"{name}={shown(value)}" for name, value in options.items())
    return f"{function}[{inside}]"


def _option_job(spec, fmt, case, keywords):
    arguments = []
    for i, _ in enumerate(spec.parameters):
        values = [_as_list(point[i]) for point in case.points]
        kind = "index" if all(isinstance(v, int) and not isinstance(v, bool) for v in values) else "array"
        arguments.append((kind, values))
    return {"op": "call", "function": spec.name, "format": fmt, "arguments": arguments,
            "options": dict(keywords)}


def _option_outputs(spec, case, values, result_format, reduced):
    """The call's outputs, one tuple per truth entry: per point, or the one reduced value."""
    if reduced:
        return [_checked(spec.name, "call", (), values, result_format)]
    if not isinstance(values, list) or len(values) != len(case.points):
        count = len(values) if isinstance(values, list) else "a scalar"
        raise JobError(f"{spec.name} returned {count} results for a batch of {len(case.points)}")
    return [_checked(spec.name, "call", point, value, result_format)
            for point, value in zip(case.points, values)]


def option_results(evaluator, backend, function, fmt, option_truths, conventions):
    """One sub-result per option of the catalog: every call of ``option_truths``
    (``[(OptionCase, OptionTruth)]``) that exercises it, judged like the accuracy check
    (failure classes apart, ULPs against the budget, conventions where documented). A call
    needing an option the backend's binding does not declare is not made: the sub-result
    is ``skip`` naming the option. Where the truth is undefined (the mean over targets
    all ignored), what the backend returned is listed under ``undefined``: a convention
    of the framework to read, not a silent pass."""
    spec = get_function(function)
    budget = spec.budgets[fmt]
    fmt_obj = get_format(fmt)
    declared, _ = evaluator.worker.run({"op": "task", "task": declared_options, "function": function,
                                        "args": (function,), "format": fmt})
    declared = set(declared)
    results = []
    for option in spec.options:
        calls = [(case, truth) for case, truth in option_truths if case.option == option.name]
        if not calls:
            continue
        judgement = Judgement(fmt_obj, budget, tuple(conventions))
        missing, undefined, errors, made = set(), [], [], 0
        tried = []
        for case, truth in calls:
            value = case.options[option.name]
            if value not in tried:
                tried.append(value)
            keywords = {k: v for k, v in case.options.items() if k != "target"}
            needs = set(keywords) | ({PROBABILITY_TARGET} if case.options.get("target") == "probability" else set())
            if needs - declared:
                missing |= needs - declared
                continue
            made += 1
            label = option_label(function, case.options)
            reduced = keywords.get("reduction", "none") != "none"
            ((status, payload),) = evaluator._answers(function, [_option_job(spec, fmt, case, keywords)])
            if status == "fatal":
                raise JobError(payload)
            try:
                if status != "ok":
                    raise JobError(payload, raised=True)
                outputs = _option_outputs(spec, case, *payload, reduced)
            except JobError as error:
                due = [r for pairs in truth.values for r, _ in pairs]
                if all(r is not None and r != r for r in due):
                    undefined.append({"call": label, "output": None, "error": str(error)})
                else:
                    judgement.failing += 1
                    errors.append(f"{label}: {error}")
                continue
            # a convention's predicate reads one point: it applies to unreduced calls only
            judgement.conventions = () if reduced else tuple(conventions)
            points = [case.points] if reduced else case.points
            for point, ys, pairs in zip(points, outputs, truth.values):
                for y, (rounded, exact) in zip(ys, pairs):
                    if rounded is not None and rounded != rounded:
                        undefined.append({"call": label, "output": y})
                    judgement.add(point, y, rounded, exact, options=keywords)
            judgement.conventions = tuple(conventions)  # the record names those that covered points
            for _, entry in judgement.worst:
                entry.setdefault("options", dict(case.options))
        if not made:
            results.append({"option": option.name, "values": tried, "status": "skip",
                            "severity": None, "points": 0, "calls": 0,
                            "message": f"{backend} does not accept {', '.join(sorted(missing))} "
                                       f"for {function}"})
            continue
        judged = record(backend, function, fmt, "accuracy", judgement, budget=budget)
        message = "; ".join(filter(None, [judged["message"], *errors] + (
            [f"{len(calls) - made} call(s) not made: {backend} does not accept "
             f"{', '.join(sorted(missing))} for {function}"] if missing else [])))
        sub = {"option": option.name, "values": tried, "status": judged["status"],
               "severity": judged["severity"], "points": judged["points"], "calls": made,
               "max_ulp": judged["max_ulp"], "classes": judged["classes"],
               "convention": judged["convention"], "worst": judged["worst"], "message": message}
        if undefined:
            sub["undefined"] = undefined
        results.append(sub)
    return results


def with_options(accuracy_record, results):
    """``accuracy_record`` with its calls with options: the sub-results under ``options``,
    and a failing one making the record fail (its classes counted in the record's, its
    largest ULP error in ``max_ulp``, its label in the message), since a wrong number
    under an option a model uses is as wrong as one without."""
    if not results:
        return accuracy_record
    accuracy_record["options"] = results
    failing = [r for r in results if r["status"] == "fail"]
    for r in failing:
        for name, count in r["classes"].items():
            accuracy_record["classes"][name] = accuracy_record["classes"].get(name, 0) + count
        if r["max_ulp"] is not None and (accuracy_record["max_ulp"] is None
                                         or r["max_ulp"] > accuracy_record["max_ulp"]):
            accuracy_record["max_ulp"] = r["max_ulp"]
        if _SEVERITY_RANK[r["severity"]] > _SEVERITY_RANK[accuracy_record["severity"]]:
            accuracy_record["severity"] = r["severity"]
    if failing and accuracy_record["status"] in ("pass", "convention"):
        accuracy_record["status"] = "fail"
    if failing:
        named = "; ".join(f"{option_label(accuracy_record['function'], {r['option']: r['values']})}: "
                          f"{r['message']}" for r in failing)
        accuracy_record["message"] = "; ".join(filter(None, [accuracy_record["message"],
                                                             f"with options: {named}"]))
    return accuracy_record

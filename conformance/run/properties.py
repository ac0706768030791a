"""The ``properties`` check: identities and bounds a correct implementation keeps.

For one backend, function and format, every property the catalog declares for the
function is evaluated, by the measure its ``check`` names (:data:`MEASURES`: ``range``
and ``monotone`` serve many functions), on a sample of the accuracy check's finite,
in-domain points (at most :data:`LIMIT` instances per property) and on points derived
from them (``-x``, ``x + c``, ``x / T``, ``next_up(x)``, ``[0, x]``, ...). Every
derived input is a value of the format, so the identity holds *exactly* for the
mathematical function and only rounding can break it. Calls are batched: one backend
call per function per derived point set, memoised across the properties.

How a violation is measured
---------------------------
The discrepancy ``D`` of an identity is formed exactly from the backend's outputs
(Fractions; mpmath at 160 bits where a log or exp is involved) and expressed in ULPs
of the format (:func:`formats.ulp_exponent`), as follows:

* **equalities of two outputs with the same exact value** (``softmax(x + c)`` and
  ``softmax(x)``, ``sigmoid(z)`` and ``softmax([0, z])[1]``, ``logit(1 - p)`` and
  ``-logit(p)``, ...): ``|a - b|`` in ULPs at the larger of ``|a|``, ``|b|``. A
  correctly rounded backend gives 0; the budget is the disagreement allowed.
* **sums and differences of outputs** (``1 - s(x) - s(-x)``, ``softplus(x) -
  softplus(-x) - x``, ``sum softmax - 1``, ``logsumexp(x + c) - logsumexp(x) - c``):
  in ULPs at the largest output combined, the scale at which they were rounded (at
  ``x = 30`` in float32, ``sigmoid(30)`` rounds to 1 and ``1 - sigmoid(30) = 0`` while
  ``sigmoid(-30) = 9.4e-14``; measured at the tiny side this would be a huge
  "violation" of a correctly rounded backend). Each output may add its half ULP,
  so a correctly rounded backend stays within 1 ULP for two terms, within 1/2 ULP
  at 1 for ``sums_to_one`` (the half ULPs of the entries add up to at most
  ``2**-p``), and within ``log(n)/2`` ULP at 1 for ``normalized`` (``exp`` turns an
  error of ``2**-p |log p_j|`` in ``log p_j`` into ``2**-p p_j |log p_j|``, and these
  sum to ``2**-p`` times the entropy, at most ``log n``).
* **bounds and order** (range, non-negative, ``x <= y`` implies ``f(x) <= f(y)``):
  a bound that is a format value cannot be broken by correct rounding, so any excess
  is a violation, measured by :func:`errors.ulp_error` at the bound (at a bound of 0
  that is in subnormal spacings: any negative output is a large violation) and, for
  order, in ULPs at the larger of the two outputs.
* **identities through a non-linear map of another function's output**
  (``logit(sigmoid(x)) = x``, ``ndtr(probit(p)) = p``, ``log_softmax = log(softmax)``,
  ``sigmoid_grad = sigmoid(x) sigmoid(-x)``, ``bce(sigmoid(x), y) =
  bce_with_logits(x, y)``): rounding of the intermediate is amplified by the map's
  slope (``logit`` near 1 by ``1/(1-p)``, ``ndtr(probit(p))`` in the tail by about
  ``probit(p)**2``), so a fixed budget alone would fail a correctly rounded backend.
  The allowance ``A`` is the largest change of the identity's side that the linked
  function's output can cause while it stays within *its* catalog accuracy budget
  (the accuracy check judges that function; within its budget it must not fail this
  one), and, for the function's own intermediate output (``probit`` in
  ``ndtr(probit(p))``), within half an ULP (correct rounding). ``A`` is propagated
  exactly (the maximum of the map over the rounding interval, mpmath), and the
  violation is ``max(0, D - A)`` in ULPs at the compared value. An output fed back
  as an input is rounded to the format first, and that rounding is added to ``A``.
* **temperature_smoothing** (budget 0): the entropy ``H(T)`` of the backend's
  ``softmax(x / T)`` for ``T`` in :data:`TEMPERATURES` (only where ``x / T`` is exact
  in the format) is computed in mpmath from the outputs as returned. The true entropy
  is non-decreasing in ``T`` (``dH/dT = Var(x) / T**3``); rounding noise may still make
  the computed one decrease where it is flat, so a decrease ``H(T1) - H(T2)`` is a
  violation only beyond ``N(T1) + N(T2)``, where ``N`` bounds the change of ``-sum p
  log p`` when every output moves within the softmax accuracy budget (see
  :func:`_entropy_and_noise`): a softmax that passes its accuracy check cannot fail
  this, one that sharpens as ``T`` grows does. The excess is reported in ULPs at the
  larger entropy.

A NaN output at a finite in-domain point breaks every identity (infinite violation);
an infinity is compared only with an infinity of the same sign, except where an
identity says "where both are finite" (``logits_link``), whose other points are left
out and counted as ``excluded``. A violation at a point where a documented convention
of the backend applies (:meth:`Convention.applies` at any input of the function the
convention belongs to, this function's or a linked one's) counts as ``convention``,
not as a failure, and still shows its measured distance.

Each record judges its own function. A violating instance whose other function's
output is itself outside that function's accuracy budget (``ndtr`` underflowing to 0
in ``ndtr(probit(p))``, checked against the catalog definition at
:data:`PRECISION` bits) is left out and counted in ``excluded``, with a note naming
the function: its own accuracy check reports it, and it says nothing about this one.

A property needing another function the backend does not provide (``sigmoid_link``
needs ``sigmoid``) is ``skip``; one whose call of another function fails is
``error`` in its entry only. The record is ``error`` when a call of the function
itself failed (or the check itself broke), else ``fail`` if any property failed,
``convention`` if any was excused, ``pass`` otherwise.
"""

import math
import weakref
from dataclasses import dataclass, field
from fractions import Fraction

from refact.conformance.truth.catalog import (
    Property, exact_mpf, get_function, mp_binary_cross_entropy, mp_logit,
)
from refact.conformance.run.records import WORST, input_hex, plain, record
from refact.conformance.numbers.ruler import classify, ulp_error
from refact.conformance.numbers.formats import exact_fraction, get_format, next_up, round_to_format, ulp_exponent
from refact.conformance.run.isolation import JobError

__all__ = ["LIMIT", "TEMPERATURES", "MEASURES", "properties_record"]

#: Most instances (points, rows, pairs) one property examines.
LIMIT = 100
#: Rows examined by temperature_smoothing (each at every temperature).
TEMPERATURE_ROWS = 50
#: Rows evaluated one at a time (one call each) by softmax's multi_label_shapes.
SINGLE_ROWS = 8
#: Labels per row of the (N, C) batch sent to sigmoid by multi_label_shapes.
LABELS = 4
#: Temperatures of temperature_smoothing: powers of two, so x / T is exact.
TEMPERATURES = (0.5, 1.0, 2.0, 4.0)
#: Working precision of the mpmath side of the measures (bits).
PRECISION = 160
#: Case sets chosen before the random ones when a sample is drawn.
_HAND_PICKED = ("special", "seed", "thresholds")

INF = math.inf

# --- plumbing: calls, conventions, tallies -----------------------------------------------


class _Missing(Exception):
    """The backend does not provide a function (or format) a property needs."""


class _CallFailed(Exception):
    """A backend call raised, crashed or timed out."""

    def __init__(self, function, message, own):
        super().__init__(f"{function}: {message}")
        self.own = own


def _key(value):
    # Signed zeros are different inputs; float.hex keeps them apart in the memo.
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return tuple(_key(v) for v in value)
    return value


_CAPABILITIES = weakref.WeakKeyDictionary()


def _capabilities(evaluator):
    """``{function: formats}`` the evaluator's backend provides, asked of its worker
    once; ``None`` when the evaluator has no worker (then a missing function shows
    up as :class:`Unsupported` when called)."""
    worker = getattr(evaluator, "worker", None)
    if worker is None or not hasattr(worker, "run"):
        return None
    try:
        return _CAPABILITIES[worker]
    except (KeyError, TypeError):
        pass
    try:
        info, _ = worker.run({"op": "info"})
        provided = {name: tuple(formats) for name, formats in info["formats_of"].items()}
    except (JobError, KeyError, TypeError):
        provided = None
    try:
        _CAPABILITIES[worker] = provided
    except TypeError:
        pass
    return provided


def _declared_conventions(backend):
    """The conventions the backend class declares (for linked functions), or ()."""
    try:
        from refact.backends import backend_class

        return tuple(backend_class(backend).conventions)
    except Exception:  # an unknown or test-only backend declares none
        return ()


class _Session:
    """One record's calls (memoised per function and point) and conventions."""

    def __init__(self, evaluator, backend, spec, fmt, conventions):
        self.evaluator = evaluator
        self.backend = backend
        self.spec = spec
        self.name = spec.name
        self.fmt = get_format(fmt)
        self.own_conventions = tuple(conventions)
        self._memo = {}
        self._provided = _capabilities(evaluator)
        self._linked_conventions = None
        self.mp = None

    def budget(self, function):
        """The catalog accuracy budget of ``function`` in this format, in ULPs."""
        return get_function(function).budgets[self.fmt.name]

    def _check_provided(self, function):
        if self._provided is None or function == self.name:
            return
        formats = self._provided.get(function)
        if formats is None:
            raise _Missing(f"{self.backend} does not provide {function}")
        if self.fmt.name not in formats:
            raise _Missing(f"{self.backend} does not provide {function} in {self.fmt.name}")

    def fresh(self, function, points):
        """The backend's outputs at ``points`` (one tuple per point), always called."""
        from refact.backends.base import Unsupported

        self._check_provided(function)
        own = function == self.name
        try:
            values, _ = self.evaluator.outputs(function, self.fmt.name, list(points))
        except Unsupported as error:
            if own:
                raise _CallFailed(function, str(error), own) from None
            raise _Missing(str(error)) from None
        except JobError as error:
            if not own and str(error).startswith("Unsupported"):
                raise _Missing(str(error)) from None
            raise _CallFailed(function, str(error), own) from None
        return [tuple(v) if isinstance(v, (tuple, list)) else (v,) for v in values]

    def outputs(self, function, points):
        """Like :meth:`fresh`, but each point is computed once per record."""
        keys = [(function, _key(p)) for p in points]
        todo = {}
        for k, p in zip(keys, points):
            if k not in self._memo:
                todo.setdefault(k, p)
        if todo:
            values = self.fresh(function, list(todo.values()))
            self._memo.update(zip(todo, values))
        return [self._memo[k] for k in keys]

    def scalars(self, function, points):
        """Outputs of a function with one value per point, as floats."""
        return [v[0] if len(v) == 1 else math.nan for v in self.outputs(function, points)]

    def convention_at(self, involved):
        """The first documented convention that applies at one of ``involved``
        (``(function, point)`` pairs), or None."""
        for function, point in involved:
            if function == self.name:
                candidates = self.own_conventions
            else:
                if self._linked_conventions is None:
                    self._linked_conventions = _declared_conventions(self.backend)
                candidates = [c for c in self._linked_conventions if c.function == function]
            for c in candidates:
                try:
                    if c.applies(point, None, self.fmt.name):
                        return c
                except Exception:  # a predicate written for another point shape
                    continue
        return None

    def linked_outside(self, involved):
        """The first linked function (not this one) among ``involved`` whose outputs
        there are outside its own accuracy budget, or None. The truth is the catalog
        definition at :data:`PRECISION` bits (exact hooks first): ample to decide a
        tolerance, and cheap, since only violating instances ask."""
        for function, point in involved:
            if function == self.name:
                continue
            ys = self._memo.get((function, _key(point)))
            if ys is not None and not self._within_budget(function, point, ys):
                return function
        return None

    def _within_budget(self, function, point, ys):
        from refact.conformance.truth.oracle import evaluate

        spec = get_function(function)
        known = spec.exact_values(point) or [None] * len(ys)
        computed = None
        budget = self.budget(function)
        for i, y in enumerate(ys):
            truth = known[i] if i < len(known) else None
            if truth is None:
                if computed is None:
                    computed = evaluate(function, point, PRECISION)
                    computed = computed if spec.vector_output else (computed,)
                    self.ctx()  # evaluate() set the shared context's precision
                truth = computed[i] if i < len(computed) else math.nan
            if classify(y, truth, self.fmt) is not None or ulp_error(y, truth, self.fmt) > budget:
                return False
        return True

    def ctx(self):
        if self.mp is None:
            from refact.conformance.truth.oracle import mp_context

            self.mp = mp_context()
        self.mp.prec = PRECISION
        return self.mp


@dataclass
class _Tally:
    """Results of one property: instances, violations, conventions, worst points."""

    prop: Property
    session: _Session
    points: int = 0
    violations: int = 0
    excluded: int = 0
    max_ulp: float = None
    conventions: dict = field(default_factory=dict)
    worst: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    linked_off: dict = field(default_factory=dict)

    def add(self, ulp, involved, shown, output, expected):
        """Judge one instance: ``ulp`` its measured violation, ``involved`` the
        ``(function, point)`` pairs it evaluated, ``shown`` the input reported."""
        if ulp != ulp:
            ulp = INF
        if ulp <= self.prop.budget_ulp:
            self.points += 1
            self.max_ulp = ulp if self.max_ulp is None else max(self.max_ulp, ulp)
            return
        convention = self.session.convention_at(involved)
        if convention is None:
            culprit = self.session.linked_outside(involved)
            if culprit is not None:  # that function's accuracy check reports it
                self.excluded += 1
                self.linked_off[culprit] = self.linked_off.get(culprit, 0) + 1
                return
        self.points += 1
        if convention is None:
            self.violations += 1
            self.max_ulp = ulp if self.max_ulp is None else max(self.max_ulp, ulp)
        else:
            count, worst, _ = self.conventions.get(convention.name, (0, 0.0, convention))
            self.conventions[convention.name] = (count + 1, max(worst, ulp), convention)
        fmt = self.session.fmt
        entry = {"property": self.prop.name, "input": plain(shown), "input_hex": input_hex(shown, fmt),
                 "output": plain(output), "expected": plain(expected), "ulp": ulp}
        if convention is not None:
            entry["convention"] = convention.name
        self.worst.append(((convention is None, ulp), entry))
        self.worst.sort(key=lambda item: item[0], reverse=True)
        del self.worst[WORST:]


# --- exact measures ----------------------------------------------------------------------


def _in_ulps(diff, at, fmt):
    """``diff`` (a Fraction >= 0) in ULPs of ``fmt`` at the magnitude ``at``."""
    try:
        return float(diff * Fraction(2) ** -ulp_exponent(at, fmt))
    except OverflowError:
        return INF


def _finite(*values):
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def _same(a, b, fmt):
    """ULPs between two outputs with the same exact value, at the larger of them."""
    if a != a or b != b:
        return INF
    if a == b:
        return 0.0
    if not _finite(a, b):
        return INF
    return _in_ulps(abs(exact_fraction(a) - exact_fraction(b)), max(abs(a), abs(b)), fmt)


def _rows_same(r1, r2, fmt):
    if len(r1) != len(r2):
        return INF
    return max((_same(a, b, fmt) for a, b in zip(r1, r2)), default=0.0)


def _outside(y, fmt, low=None, high=None):
    """How far ``y`` lies outside ``[low, high]`` (bounds that are floats), in ULPs at
    the bound."""
    if y != y:
        return INF
    if low is not None and y < low:
        return ulp_error(y, low, fmt)
    if high is not None and y > high:
        return ulp_error(y, high, fmt)
    return 0.0


def _drop(y1, y2, fmt):
    """By how much ``y1`` exceeds ``y2`` (which should not be smaller), in ULPs at
    the larger of the two; 0 when in order."""
    if y1 != y1 or y2 != y2:
        return INF
    if y1 <= y2:
        return 0.0
    if not _finite(y1, y2):
        return INF
    return _in_ulps(exact_fraction(y1) - exact_fraction(y2), max(abs(y1), abs(y2)), fmt)


def _band(v, budget, fmt):
    """The largest ``|v - t|`` for a truth ``t`` that the output ``v`` is within
    ``budget`` ULPs of (ULPs at ``t``, which may sit one binade above ``v``), as an
    exact Fraction. Computed with floats: ``budget * 2**k`` is exact, and rounding
    ``|v| + 2 step`` can only move it up a binade (a wider band)."""
    v = abs(v)
    step = budget * math.ldexp(1.0, ulp_exponent(v, fmt))
    return Fraction(budget * math.ldexp(1.0, ulp_exponent(v + 2 * step, fmt)))


def _fed(value, fmt):
    """An output fed back as an input: rounded to the format (an exact no-op unless
    the backend promoted), and the rounding it took."""
    rounded = round_to_format(value, fmt)
    if not _finite(rounded):
        return rounded, Fraction(0)
    return rounded, abs(exact_fraction(rounded) - exact_fraction(value))


def _excess(ctx, discrepancy, allowance, at, fmt):
    """``max(0, D - A)`` in ULPs at ``at`` (D, A mpf)."""
    over = discrepancy - allowance
    if over <= 0:
        return 0.0
    return float(ctx.ldexp(over, -ulp_exponent(at, fmt)))


def _fits(value, fmt):
    """Whether the finite float ``value`` is a value of ``fmt`` (fast path of
    :func:`formats.is_representable` for finite floats: an integer multiple of the
    format's spacing at its binade, below the overflow binade)."""
    if value == 0:
        return True
    if not math.isfinite(value):
        return False
    top = math.frexp(value)[1] - 1  # floor(log2 |value|)
    if top > fmt.emax:
        return False
    spacing = max(top, fmt.emin) - fmt.precision + 1
    return math.ldexp(abs(value), -spacing).is_integer()


def _exact_sum(value, shift, fmt):
    """``value + shift`` if exact and finite in ``fmt``, else None (Knuth's TwoSum:
    the float64 sum is exact when its rounding error is zero)."""
    total = value + shift
    if not math.isfinite(total):
        return None
    back = total - value
    if (value - (total - back)) + (shift - back) != 0 or not _fits(total, fmt):
        return None
    return total


_SHIFTS = (1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.25, 3.0, -3.0, 64.0, -64.0, 1024.0, -1024.0)


def _exact_shift(row, fmt):
    """A nonzero ``c`` with every ``x + c`` exact and finite in ``fmt`` and the shifted
    row, or ``(None, None)``. Small constants first, then ULP multiples of the
    largest entry, then shifts taking an entry to 0."""
    top = max(abs(x) for x in row)
    candidates = list(_SHIFTS)
    if top > 0:
        spacing = math.ldexp(1.0, ulp_exponent(top, fmt))
        candidates += [spacing, 2 * spacing, -spacing, 4 * spacing]
    candidates += [-x for x in row]
    for c in candidates:
        if c == 0 or not _fits(float(c), fmt):
            continue
        shifted = []
        for x in row:
            y = _exact_sum(x, c, fmt)
            if y is None:
                break
            shifted.append(y)
        else:
            return float(c), tuple(shifted)
    return None, None


def _exact_quotient(value, power_of_two, fmt):
    """``value / power_of_two`` if exact in ``fmt``, else None."""
    q = value / power_of_two
    if q * power_of_two != value or not _fits(q, fmt):
        return None
    return q


# --- sampling ------------------------------------------------------------------------------


def _usable(spec, point):
    """A finite point where the mathematics gives a value (no NaN due)."""
    for a in point:
        values = a if isinstance(a, tuple) else (a,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                return False
        if isinstance(a, tuple) and not a:
            return False
    try:
        known = spec.exact_values(point)
    except (ValueError, TypeError):
        return False
    return known is None or not any(v != v for v in known if isinstance(v, float))


def _sample(items, limit):
    """At most ``limit`` of ``items`` (in order), evenly spread."""
    if len(items) <= limit:
        return list(items)
    if limit <= 0:
        return []
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def _base_points(spec, cases):
    """The accuracy points the properties start from: finite and in the domain, the
    hand-picked sets first (a quarter of the room kept for the random ones), then an
    even spread of the random ones."""
    limit = LIMIT
    picked, rest, seen = [], [], set()
    for set_name, point in cases:
        if not _usable(spec, point):
            continue
        k = _key(point)
        if k in seen:
            continue
        seen.add(k)
        (picked if set_name in _HAND_PICKED else rest).append(point)
    picked = picked[:limit - min(len(rest), limit // 4)]
    return picked + _sample(rest, limit - len(picked))


def _xs(base):
    return [p[0] for p in base]


def _magnitudes(xs):
    """Distinct |x| (for properties pairing x with -x)."""
    return _sample(sorted({abs(x) for x in xs}), LIMIT)


# --- shared property shapes -----------------------------------------------------------------


def _range(s, t, base):
    """Each output value lies in the property's [low, high] (None: unbounded); with
    ``labels_in_unit``, only where the point's label is in [0, 1]."""
    low, high = t.prop.low, t.prop.high
    points = [p for p in base if not t.prop.labels_in_unit or 0 <= p[1] <= 1]
    for point, ys in zip(points, s.outputs(s.name, points)):
        worst = max((_outside(y, s.fmt, low, high) for y in ys), default=0.0)
        t.add(worst, [(s.name, point)], point, ys, [low, high])


def _monotone(s, t, base):
    """x < x' implies f(x) <= f(x'): the sample sorted, each point beside its next_up."""
    domain = s.spec.parameters[0].role == "probability"
    xs = set()
    for x in _xs(base):
        xs.add(x)
        up = next_up(x, s.fmt)
        if math.isfinite(up) and (not domain or up <= 1):
            xs.add(up)
    xs = sorted(xs)
    ys = s.scalars(s.name, [(x,) for x in xs])
    for (x1, y1), (x2, y2) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        t.add(_drop(y1, y2, s.fmt), [(s.name, (x1,)), (s.name, (x2,))], (x1, x2), (y1, y2), None)


def _complement_symmetry(s, t, base):
    """f(-x) == 1 - f(x): |1 - f(x) - f(-x)| in ULPs at the larger output."""
    mags = _magnitudes(_xs(base))
    ys = s.scalars(s.name, [(m,) for m in mags] + [(-m,) for m in mags])
    for m, a, b in zip(mags, ys, ys[len(mags):]):
        if _finite(a, b):
            d = abs(1 - exact_fraction(a) - exact_fraction(b))
            ulp = _in_ulps(d, max(abs(a), abs(b)), s.fmt)
            expected = float(1 - exact_fraction(a))
        else:
            ulp, expected = INF, math.nan
        t.add(ulp, [(s.name, (m,)), (s.name, (-m,))], -m, b, expected)


def _antisymmetry(s, t, base):
    """f(1 - p) == -f(p) where 1 - p is exact."""
    ps, qs = [], []
    for p in _xs(base):
        q = _exact_complement(p, s.fmt)
        if q is None:
            t.excluded += 1
        else:
            ps.append(p)
            qs.append(q)
    ys = s.scalars(s.name, [(p,) for p in ps] + [(q,) for q in qs])
    for p, q, a, b in zip(ps, qs, ys, ys[len(ps):]):
        t.add(_same(b, -a, s.fmt), [(s.name, (p,)), (s.name, (q,))], q, b, -a)


def _shifted_rows(s, t, base):
    """``[(row, row + c, c)]`` for the sampled rows that have an exact shift ``c``; the
    others are counted as excluded."""
    pairs = []
    for (row,) in base:
        c, shifted = _exact_shift(row, s.fmt)
        if c is None:
            t.excluded += 1
        else:
            pairs.append((row, shifted, c))
    return pairs


def _row_shift_invariance(s, t, base):
    """f(x + c) == f(x) for a shift c with every x + c exact: equal outputs."""
    pairs = _shifted_rows(s, t, base)
    ys = s.outputs(s.name, [(r,) for r, _, _ in pairs] + [(sh,) for _, sh, _ in pairs])
    for (row, shifted, c), a, b in zip(pairs, ys, ys[len(pairs):]):
        t.add(_rows_same(b, a, s.fmt), [(s.name, (row,)), (s.name, (shifted,))], (shifted,), b, a)


# --- sigmoid ------------------------------------------------------------------------------


def _sigmoid_softmax_link(s, t, base):
    xs = _xs(base)
    ys = s.scalars(s.name, [(x,) for x in xs])
    rows = s.outputs("softmax", [((0.0, x),) for x in xs])
    for x, y, row in zip(xs, ys, rows):
        other = row[1] if len(row) == 2 else math.nan
        t.add(_same(y, other, s.fmt), [(s.name, (x,)), ("softmax", ((0.0, x),))], x, y, other)


def _sigmoid_multi_label(s, t, base):
    """An (N, C) batch through sigmoid: (N, C) back, each value the sigmoid of its own
    entry (compared with the 1-D call), rows free to sum to anything."""
    xs = _xs(base)
    n = min(len(xs) // LABELS, LIMIT // LABELS)
    if n < 2:
        return
    rows = [tuple(xs[i * LABELS:(i + 1) * LABELS]) for i in range(n)]
    singles = s.scalars(s.name, [(x,) for x in xs[:n * LABELS]])
    batch = s.outputs(s.name, [(row,) for row in rows])
    unnormalised = 0
    for i, (row, out) in enumerate(zip(rows, batch)):
        alone = tuple(singles[i * LABELS:(i + 1) * LABELS])
        t.add(_rows_same(out, alone, s.fmt), [(s.name, (x,)) for x in row], (row,), out, alone)
        if len(out) == LABELS and all(_finite(v) for v in out) and \
                sum(exact_fraction(v) for v in out) != 1:
            unnormalised += 1
    t.notes.append(f"{n}x{LABELS} batch; {unnormalised} of {n} rows do not sum to 1, "
                   "as multi-label outputs may")


# --- sigmoid_grad ------------------------------------------------------------------------


def _even(s, t, base):
    mags = _magnitudes(_xs(base))
    ys = s.scalars(s.name, [(m,) for m in mags] + [(-m,) for m in mags])
    for m, a, b in zip(mags, ys, ys[len(mags):]):
        t.add(_same(b, a, s.fmt), [(s.name, (m,)), (s.name, (-m,))], -m, b, a)


def _sigmoid_grad_product(s, t, base):
    """g(x) == sigmoid(x) sigmoid(-x): the product of the backend's sigmoids is exact;
    the allowance is what sigmoid's accuracy budget lets the product move."""
    xs = _xs(base)
    g = s.scalars(s.name, [(x,) for x in xs])
    sig = s.scalars("sigmoid", [(x,) for x in xs] + [(-x,) for x in xs])
    budget = s.budget("sigmoid")
    for x, gx, a, b in zip(xs, g, sig, sig[len(xs):]):
        involved = [(s.name, (x,)), ("sigmoid", (x,)), ("sigmoid", (-x,))]
        if not _finite(gx, a, b):
            t.add(INF, involved, x, gx, math.nan)
            continue
        fa, fb = exact_fraction(a), exact_fraction(b)
        product = fa * fb
        ea, eb = _band(a, budget, s.fmt), _band(b, budget, s.fmt)
        allowance = ea * abs(fb) + eb * abs(fa) + ea * eb
        over = abs(exact_fraction(gx) - product) - allowance
        ulp = 0.0 if over <= 0 else _in_ulps(over, max(abs(exact_fraction(gx)), product), s.fmt)
        t.add(ulp, involved, x, gx, float(product))


# --- log_sigmoid, softplus ---------------------------------------------------------------


def _log_sigmoid_softplus_link(s, t, base):
    xs = _xs(base)
    ys = s.scalars(s.name, [(x,) for x in xs])
    sp = s.scalars("softplus", [(-x,) for x in xs])
    for x, y, v in zip(xs, ys, sp):
        t.add(_same(y, -v, s.fmt), [(s.name, (x,)), ("softplus", (-x,))], x, y, -v)


def _softplus_difference(s, t, base):
    """softplus(x) - softplus(-x) == x, in ULPs at the larger output."""
    mags = _magnitudes(_xs(base))
    ys = s.scalars(s.name, [(m,) for m in mags] + [(-m,) for m in mags])
    for m, a, b in zip(mags, ys, ys[len(mags):]):
        if _finite(a, b):
            d = abs(exact_fraction(a) - exact_fraction(b) - exact_fraction(m))
            ulp = _in_ulps(d, max(abs(a), abs(b)), s.fmt)
            expected = float(exact_fraction(b) + exact_fraction(m))
        else:
            ulp, expected = INF, math.nan
        t.add(ulp, [(s.name, (m,)), (s.name, (-m,))], m, a, expected)


def _softplus_lower_bound(s, t, base):
    xs = _xs(base)
    ys = s.scalars(s.name, [(x,) for x in xs])
    for x, y in zip(xs, ys):
        bound = max(x, 0.0)
        t.add(_outside(y, s.fmt, low=bound), [(s.name, (x,))], x, y, bound)


# --- logit, probit -----------------------------------------------------------------------


def _logit_inverse(s, t, base):
    """logit(sigmoid(x)) recovers x. The x are the logits of the sampled p; the
    allowance is logit's change over sigmoid's accuracy band around sigmoid(x)."""
    xs = []
    for p in _xs(base):
        if 0 < p < 1:
            x = round_to_format(math.log(p) - math.log1p(-p), s.fmt)
            if math.isfinite(x):
                xs.append(x)
    xs = list(dict.fromkeys(xs))
    sig = s.scalars("sigmoid", [(x,) for x in xs])
    fed = [_fed(v, s.fmt) for v in sig]
    inside = [(x, v, q, r) for x, v, (q, r) in zip(xs, sig, fed) if _finite(v) and 0 < q < 1]
    t.excluded += len(xs) - len(inside)
    back = s.scalars(s.name, [(q,) for _, _, q, _ in inside])
    ctx = s.ctx()
    budget = s.budget("sigmoid")
    for (x, v, q, rounding), y in zip(inside, back):
        involved = [("sigmoid", (x,)), (s.name, (q,))]
        if not _finite(y):
            t.add(INF, involved, x, y, x)
            continue
        e = _band(q, budget, s.fmt) + rounding
        fq = exact_fraction(q)
        if fq - e <= 0 or fq + e >= 1:
            t.excluded += 1
            continue
        centre = mp_logit(ctx, fq)
        allowance = max(mp_logit(ctx, fq + e) - centre, centre - mp_logit(ctx, fq - e))
        discrepancy = abs(ctx.convert(y) - ctx.convert(x))
        t.add(_excess(ctx, discrepancy, allowance, max(abs(x), abs(y)), s.fmt), involved, x, y, x)


def _probit_inverse(s, t, base):
    """ndtr(probit(p)) recovers p. Allowance: ndtr's accuracy band at its output,
    plus ndtr's change over half an ULP of probit's own output (the largest density
    on that interval times its width)."""
    ps = [p for p in _xs(base) if 0 < p < 1]
    zs = s.scalars(s.name, [(p,) for p in ps])
    rows = []
    for p, z in zip(ps, zs):
        if z != z or (math.isinf(z)):  # no ndtr brings p back: shown as probit's output, p due
            t.add(INF, [(s.name, (p,))], p, z, p)
            continue
        q, rounding = _fed(z, s.fmt)
        rows.append((p, z, q, rounding))
    back = s.scalars("ndtr", [(q,) for _, _, q, _ in rows])
    ctx = s.ctx()
    budget = s.budget("ndtr")
    density = 1 / ctx.sqrt(2 * ctx.pi)
    for (p, z, q, rounding), n in zip(rows, back):
        involved = [(s.name, (p,)), ("ndtr", (q,))]
        if not _finite(n):
            t.add(INF, involved, p, n, p)
            continue
        h = _band(z, 0.5, s.fmt) + rounding
        fq = exact_fraction(q)
        nearest = Fraction(0) if fq - h <= 0 <= fq + h else min(abs(fq - h), abs(fq + h))
        m = exact_mpf(ctx, nearest)
        slope = density * ctx.exp(-m * m / 2)
        allowance = exact_mpf(ctx, _band(n, budget, s.fmt)) + exact_mpf(ctx, h) * slope
        discrepancy = abs(ctx.convert(n) - ctx.convert(p))
        t.add(_excess(ctx, discrepancy, allowance, max(abs(n), p), s.fmt), involved, p, n, p)


# --- softmax --------------------------------------------------------------------------------


def _sums_to_one(s, t, base):
    """|sum_j softmax(x)_j - 1| in ULPs at 1, the sum taken exactly."""
    for point, ys in zip(base, s.outputs(s.name, base)):
        if len(ys) == len(point[0]) and all(_finite(y) for y in ys):
            exact_total = sum(map(Fraction, ys))
            ulp = _in_ulps(abs(exact_total - 1), 1.0, s.fmt)
            total = float(exact_total)
        else:
            ulp, total = INF, math.nan
        t.add(ulp, [(s.name, point)], point, total, 1.0)


def _order(s, t, base):
    """x_i <= x_j implies softmax(x)_i <= softmax(x)_j (equal entries, equal outputs)."""
    for point, ys in zip(base, s.outputs(s.name, base)):
        row = point[0]
        if len(ys) != len(row):
            t.add(INF, [(s.name, point)], point, ys, None)
            continue
        order = sorted(range(len(row)), key=lambda j: row[j])
        worst = 0.0
        for i, j in zip(order, order[1:]):
            if row[i] == row[j]:
                worst = max(worst, _same(ys[i], ys[j], s.fmt))
            else:
                worst = max(worst, _drop(ys[i], ys[j], s.fmt))
        t.add(worst, [(s.name, point)], point, ys, None)


def _two_logit_rows(base, fmt):
    """(z0, z1) pairs from the sampled rows (consecutive entries) with z1 - z0 exact."""
    pairs = []
    for (row,) in base:
        for k in range(0, len(row) - 1, 2):
            z0, z1 = row[k], row[k + 1]
            d = _exact_sum(z1, -z0, fmt)
            if d is not None:
                pairs.append(((z0, z1), d))
    unique = list({_key(p[0]): p for p in pairs}.values())
    return _sample(unique, LIMIT)


def _softmax_sigmoid_link(s, t, base):
    """softmax([z0, z1]) == [sigmoid(z0 - z1), sigmoid(z1 - z0)] where z1 - z0 is exact."""
    pairs = _two_logit_rows(base, s.fmt)
    rows = s.outputs(s.name, [(z,) for z, _ in pairs])
    sig = s.scalars("sigmoid", [(d,) for _, d in pairs] + [(-d,) for _, d in pairs])
    for (z, d), out, up, down in zip(pairs, rows, sig, sig[len(pairs):]):
        expected = (down, up)
        t.add(_rows_same(out, expected, s.fmt),
              [(s.name, (z,)), ("sigmoid", (d,)), ("sigmoid", (-d,))], (z,), out, expected)


def _entropy_and_noise(ctx, ys, budget, fmt):
    """(H, N): the entropy -sum p log p of the outputs as given (mpmath), and a bound
    on how much it can change when each output moves within ``budget`` ULPs. Per
    output, with f(q) = -q log q: on an interval [lo, hi] with lo > 0 the change is at
    most the half-width times max |f'| = max |1 + log q|, taken at an end (f' is
    monotone); if the interval reaches 0, f stays in [0, f(min(hi, 1/e))] there (f
    rises up to 1/e). Bounds in float64 with a relative margin for their own rounding."""
    total = ctx.zero
    noise = 0.0
    for y in ys:
        if y > 0:
            total -= ctx.convert(y) * ctx.log(ctx.convert(y))
        e = float(_band(y, budget, fmt))
        lo, hi = max(y - e, 0.0), min(y + e, 1.0)
        if lo > 0:
            noise += e * max(abs(1 + math.log(lo)), abs(1 + math.log(hi)))
        else:
            top = min(hi, math.exp(-1))
            noise += -top * math.log(top) if top > 0 else 0.0
    return total, ctx.convert(noise * (1 + 2.0 ** -20))


def _temperature_smoothing(s, t, base):
    """The entropy of softmax(x / T) does not decrease as T grows, beyond the noise
    that outputs within the softmax accuracy budget can make."""
    plans = []
    for (row,) in _sample(base, TEMPERATURE_ROWS):
        scaled = []
        for temperature in TEMPERATURES:
            entries = [_exact_quotient(x, temperature, s.fmt) for x in row]
            if all(v is not None for v in entries):
                scaled.append((temperature, tuple(entries)))
        if len(scaled) < 2:
            t.excluded += 1
        else:
            plans.append((row, scaled))
    points = [(r,) for _, scaled in plans for _, r in scaled]
    outputs = dict(zip([_key(p) for p in points], s.outputs(s.name, points)))
    ctx = s.ctx()
    budget = s.budget(s.name)
    for row, scaled in plans:
        measured = []
        for temperature, r in scaled:
            ys = outputs[_key((r,))]
            if len(ys) != len(r) or not all(_finite(y) for y in ys):
                measured.append((temperature, r, ys, None, None))
            else:
                measured.append((temperature, r, ys) + _entropy_and_noise(ctx, ys, budget, s.fmt))
        for (t1, r1, y1, h1, n1), (t2, r2, y2, h2, n2) in zip(measured, measured[1:]):
            involved = [(s.name, (r1,)), (s.name, (r2,))]
            if h1 is None or h2 is None:
                t.add(INF, involved, (r1, r2), None, None)
                continue
            ulp = _excess(ctx, h1 - h2, n1 + n2, max(h1, h2), s.fmt)
            # shown: the two scaled rows; output: H(T2); expected: the least H(T2) allowed
            t.add(ulp, involved, (r1, r2), float(h2), float(h1 - n1 - n2))


def _softmax_multi_class(s, t, base):
    """Rows of an (N, C) batch equal the same rows sent alone (one call each)."""
    groups = {}
    for point in base:
        groups.setdefault(len(point[0]), []).append(point)
    batch_rows = max(groups.values(), key=len, default=[])
    if len(batch_rows) < 2:
        return
    batch = s.outputs(s.name, batch_rows)
    for point, out in zip(_sample(batch_rows, SINGLE_ROWS), _sample(batch, SINGLE_ROWS)):
        (alone,) = s.fresh(s.name, [point])
        t.add(_rows_same(out, alone, s.fmt), [(s.name, point)], point, out, alone)
    t.notes.append(f"{len(batch_rows)}x{len(batch_rows[0][0])} batch against "
                   f"{min(len(batch_rows), SINGLE_ROWS)} rows sent alone")


# --- log_softmax ---------------------------------------------------------------------------


def _normalized(s, t, base):
    """sum exp(log_softmax(x)) == 1, the exponentials taken exactly (mpmath)."""
    ctx = s.ctx()
    for point, ys in zip(base, s.outputs(s.name, base)):
        if any(y != y or y == INF for y in ys):
            t.add(INF, [(s.name, point)], point, ys, 1.0)
            continue
        total = ctx.fsum(ctx.exp(ctx.convert(y)) for y in ys if y != -INF)
        ulp = float(ctx.ldexp(abs(total - 1), -ulp_exponent(1.0, s.fmt)))
        t.add(ulp, [(s.name, point)], point, float(total), 1.0)


def _log_softmax_link(s, t, base):
    """log_softmax(x) == log(softmax(x)) where softmax is normal; the allowance is the
    change of log over softmax's accuracy band."""
    ctx = s.ctx()
    own = s.outputs(s.name, base)
    soft = s.outputs("softmax", base)
    budget = s.budget("softmax")
    for point, ls, sm in zip(base, own, soft):
        involved = [(s.name, point), ("softmax", point)]
        if len(ls) != len(sm):
            t.add(INF, involved, point, ls, sm)
            continue
        worst, compared = 0.0, 0
        expected = []
        for l, p in zip(ls, sm):
            if not (_finite(p) and p >= s.fmt.smallest_normal):
                expected.append(None)
                continue
            compared += 1
            fp = exact_fraction(p)
            log_p = ctx.log(exact_mpf(ctx, fp))
            expected.append(float(log_p))
            if not _finite(l):
                worst = INF
                continue
            e = _band(p, budget, s.fmt)
            if fp - e <= 0:
                continue
            allowance = log_p - ctx.log(exact_mpf(ctx, fp - e))  # the wider side (log is concave)
            worst = max(worst, _excess(ctx, abs(ctx.convert(l) - log_p), allowance,
                                       max(abs(l), abs(float(log_p))), s.fmt))
        if compared:
            t.add(worst, involved, point, ls, expected)
        else:
            t.excluded += 1


# --- logsumexp ------------------------------------------------------------------------------


def _logsumexp_bounds(s, t, base):
    """max(x) <= lse(x) <= max(x) + log(n), each side in ULPs at the bound."""
    ctx = s.ctx()
    ys = s.scalars(s.name, base)
    for point, y in zip(base, ys):
        row = point[0]
        top = max(row)
        if y != y or math.isinf(y):
            t.add(INF, [(s.name, point)], point, y, top)
            continue
        low = _outside(y, s.fmt, low=top)
        upper = ctx.convert(top) + ctx.log(len(row))
        high = 0.0
        if ctx.convert(y) > upper:
            high = float(ctx.ldexp(ctx.convert(y) - upper, -ulp_exponent(upper, s.fmt)))
        t.add(max(low, high), [(s.name, point)], point, y, [top, float(upper)])


def _shift_equivariance(s, t, base):
    """lse(x + c) == lse(x) + c for exact shifts, in ULPs at the larger output."""
    pairs = _shifted_rows(s, t, base)
    ys = s.scalars(s.name, [(r,) for r, _, _ in pairs] + [(sh,) for _, sh, _ in pairs])
    for (row, shifted, c), a, b in zip(pairs, ys, ys[len(pairs):]):
        involved = [(s.name, (row,)), (s.name, (shifted,))]
        if _finite(a, b):
            d = abs(exact_fraction(b) - exact_fraction(a) - exact_fraction(c))
            ulp = _in_ulps(d, max(abs(a), abs(b)), s.fmt)
            expected = float(exact_fraction(a) + exact_fraction(c))
        else:
            ulp, expected = INF, math.nan
        t.add(ulp, involved, (shifted,), b, expected)


def _logsumexp_monotone(s, t, base):
    """Raising one entry (to its next_up, and to the row's maximum) does not lower lse."""
    pairs = []
    for (row,) in base:
        top = max(row)
        for j, x in enumerate(row):
            for raised in (next_up(x, s.fmt), top):
                if math.isfinite(raised) and raised > x:
                    pairs.append((row, row[:j] + (raised,) + row[j + 1:]))
    pairs = _sample(pairs, LIMIT)
    ys = s.scalars(s.name, [(r,) for r, _ in pairs] + [(r,) for _, r in pairs])
    for (row, raised), a, b in zip(pairs, ys, ys[len(pairs):]):
        t.add(_drop(a, b, s.fmt), [(s.name, (row,)), (s.name, (raised,))], (raised,), b, a)


# --- losses ---------------------------------------------------------------------------------


def _exact_complement(v, fmt):
    c = 1 - exact_fraction(v)
    r = round_to_format(c, fmt)
    return r if r == c else None


def _bce_symmetry(s, t, base):
    """bce(p, y) == bce(1 - p, 1 - y) where both complements are exact, for labels in
    [0, 1] (frameworks may reject others, and one rejected label fails a whole batch)."""
    pairs = []
    for p, y in base:
        q, z = _exact_complement(p, s.fmt), _exact_complement(y, s.fmt)
        if q is None or z is None or not 0 <= y <= 1:
            t.excluded += 1
        else:
            pairs.append(((p, y), (q, z)))
    ys = s.scalars(s.name, [a for a, _ in pairs] + [b for _, b in pairs])
    for (a, b), ya, yb in zip(pairs, ys, ys[len(pairs):]):
        t.add(_same(yb, ya, s.fmt), [(s.name, a), (s.name, b)], b, yb, ya)


def _bce_logits_link(s, t, base):
    """bce(sigmoid(x), y) agrees with bce_with_logits(x, y) where both are finite. The
    x are the logits of the sampled p. Allowance: bce's change over sigmoid's accuracy
    band (bce is convex in p with its minimum at p = y), plus bce_with_logits's band."""
    chosen = []
    for p, y in base:
        if 0 < p < 1 and 0 <= y <= 1:
            x = round_to_format(math.log(p) - math.log1p(-p), s.fmt)
            if math.isfinite(x):
                chosen.append((x, y))
    chosen = list({_key(c): c for c in chosen}.values())
    sig = s.scalars("sigmoid", [(x,) for x, _ in chosen])
    fed = [_fed(v, s.fmt) for v in sig]
    keep = [(x, y, v, q, r) for (x, y), v, (q, r) in zip(chosen, sig, fed) if _finite(v)]
    t.excluded += len(chosen) - len(keep)
    own = s.scalars(s.name, [(q, y) for _, y, _, q, _ in keep])
    logits = s.scalars("binary_cross_entropy_with_logits", [(x, y) for x, y, _, _, _ in keep])
    ctx = s.ctx()
    sig_budget = s.budget("sigmoid")
    link_budget = s.budget("binary_cross_entropy_with_logits")
    for (x, y, v, q, rounding), a, b in zip(keep, own, logits):
        involved = [(s.name, (q, y)), ("sigmoid", (x,)), ("binary_cross_entropy_with_logits", (x, y))]
        if a != a or b != b:
            t.add(INF, involved, (x, y), a, b)
            continue
        if not _finite(a, b):
            t.excluded += 1
            continue
        fq, fy = exact_fraction(q), exact_fraction(y)
        e = _band(q, sig_budget, s.fmt) + rounding
        lo, hi = max(fq - e, Fraction(0)), min(fq + e, Fraction(1))
        centre = mp_binary_cross_entropy(ctx, fq, fy)
        ends = [mp_binary_cross_entropy(ctx, lo, fy), mp_binary_cross_entropy(ctx, hi, fy)]
        if any(ctx.isinf(v) for v in ends + [centre]):
            t.excluded += 1
            continue
        change = max(abs(v - centre) for v in ends)
        if lo <= fy <= hi:
            change = max(change, centre - mp_binary_cross_entropy(ctx, fy, fy))
        allowance = change + exact_mpf(ctx, _band(b, link_budget, s.fmt))
        discrepancy = abs(ctx.convert(a) - ctx.convert(b))
        t.add(_excess(ctx, discrepancy, allowance, max(abs(a), abs(b)), s.fmt), involved, (x, y), a, b)


def _bce_logits_symmetry(s, t, base):
    """bce_with_logits(-x, 1 - y) == bce_with_logits(x, y) where 1 - y is exact, for
    labels in [0, 1]."""
    pairs = []
    for x, y in base:
        z = _exact_complement(y, s.fmt)
        if z is None or not 0 <= y <= 1:
            t.excluded += 1
        else:
            pairs.append(((x, y), (-x, z)))
    ys = s.scalars(s.name, [a for a, _ in pairs] + [b for _, b in pairs])
    for (a, b), ya, yb in zip(pairs, ys, ys[len(pairs):]):
        t.add(_same(yb, ya, s.fmt), [(s.name, a), (s.name, b)], b, yb, ya)


def _bce_logits_softplus_link(s, t, base):
    xs = list(dict.fromkeys(x for x, _ in base))
    ys = s.scalars(s.name, [(x, 0.0) for x in xs])
    sp = s.scalars("softplus", [(x,) for x in xs])
    for x, y, v in zip(xs, ys, sp):
        t.add(_same(y, v, s.fmt), [(s.name, (x, 0.0)), ("softplus", (x,))], (x, 0.0), y, v)


def _cross_entropy_link(s, t, base):
    """cross_entropy(x, t) == -log_softmax(x)[t]."""
    ys = s.scalars(s.name, base)
    rows = s.outputs("log_softmax", [(row,) for row, _ in base])
    for (row, target), y, ls in zip(base, ys, rows):
        other = -ls[target] if len(ls) == len(row) else math.nan
        t.add(_same(y, other, s.fmt), [(s.name, (row, target)), ("log_softmax", (row,))],
              (row, target), y, other)


def _loss_shift_invariance(s, t, base):
    """The loss of rows shifted by exact constants equals the loss of the rows: for
    cross_entropy the logits, for distillation_loss student and teacher (each its own c)."""
    pairs = []
    for point in base:
        shifted = list(point)
        ok = True
        for i, parameter in enumerate(s.spec.parameters):
            if parameter.role == "row":
                c, row = _exact_shift(point[i], s.fmt)
                if c is None:
                    ok = False
                    break
                shifted[i] = row
        if ok:
            pairs.append((point, tuple(shifted)))
        else:
            t.excluded += 1
    ys = s.scalars(s.name, [a for a, _ in pairs] + [b for _, b in pairs])
    for (a, b), ya, yb in zip(pairs, ys, ys[len(pairs):]):
        t.add(_same(yb, ya, s.fmt), [(s.name, a), (s.name, b)], b, yb, ya)


def _zero_at_teacher(s, t, base):
    """distillation_loss(t, t, T) == 0 exactly, for each sampled row as both."""
    points = []
    for student, teacher, temperature in base:
        points += [(teacher, teacher, temperature), (student, student, temperature)]
    points = list({_key(p): p for p in points}.values())[:LIMIT]
    for point, y in zip(points, s.scalars(s.name, points)):
        t.add(_outside(y, s.fmt, low=0.0, high=0.0), [(s.name, point)], point, y, 0.0)


# --- the table ----------------------------------------------------------------------------

#: The measures, by the name a catalog :class:`Property` gives as its ``check``.
MEASURES = {
    "range": _range,
    "monotone": _monotone,
    "complement_symmetry": _complement_symmetry,
    "even": _even,
    "antisymmetry": _antisymmetry,
    "sigmoid_softmax_link": _sigmoid_softmax_link,
    "sigmoid_multi_label": _sigmoid_multi_label,
    "sigmoid_grad_product": _sigmoid_grad_product,
    "log_sigmoid_softplus_link": _log_sigmoid_softplus_link,
    "softplus_difference": _softplus_difference,
    "softplus_lower_bound": _softplus_lower_bound,
    "logit_inverse": _logit_inverse,
    "probit_inverse": _probit_inverse,
    "sums_to_one": _sums_to_one,
    "row_shift_invariance": _row_shift_invariance,
    "order": _order,
    "softmax_sigmoid_link": _softmax_sigmoid_link,
    "temperature_smoothing": _temperature_smoothing,
    "softmax_multi_class": _softmax_multi_class,
    "normalized": _normalized,
    "log_softmax_link": _log_softmax_link,
    "logsumexp_bounds": _logsumexp_bounds,
    "shift_equivariance": _shift_equivariance,
    "logsumexp_monotone": _logsumexp_monotone,
    "bce_symmetry": _bce_symmetry,
    "bce_logits_link": _bce_logits_link,
    "bce_logits_symmetry": _bce_logits_symmetry,
    "bce_logits_softplus_link": _bce_logits_softplus_link,
    "cross_entropy_link": _cross_entropy_link,
    "loss_shift_invariance": _loss_shift_invariance,
    "zero_at_teacher": _zero_at_teacher,
}


# --- the record ---------------------------------------------------------------------------


def _entry(prop, tally, status, reason):
    for function, count in tally.linked_off.items():
        tally.notes.append(f"{count} left out where {function} is outside its own accuracy "
                           "budget (its accuracy check reports it)")
    entry = {"name": prop.name, "description": prop.description, "budget_ulp": prop.budget_ulp,
             "status": status, "points": tally.points, "violations": tally.violations,
             "conventions": sum(c for c, _, _ in tally.conventions.values()),
             "excluded": tally.excluded, "linked_outside": dict(tally.linked_off),
             "max_ulp": tally.max_ulp}
    notes = ([reason] if reason else []) + tally.notes
    entry["message"] = "; ".join(notes)
    return entry


def _summary(entry):
    name, status, budget = entry["name"], entry["status"], entry["budget_ulp"]
    if status in ("skip", "error"):
        return f"{name}: {status} ({entry['message']})"
    worst = entry["max_ulp"]
    worst_text = "-" if worst is None else f"{worst:.3g}"
    if budget:
        text = f"{name}: max {worst_text} ULP (budget {budget:g})"
        if entry["violations"]:
            text += f", {entry['violations']} of {entry['points']} violate"
    else:
        text = f"{name}: {entry['violations']} violations of {entry['points']}"
        if entry["violations"]:
            text += f", max {worst_text} ULP"
    if entry["conventions"]:
        text += f", {entry['conventions']} under a convention"
    for function, count in entry["linked_outside"].items():
        text += f", {count} left out ({function} outside its accuracy budget)"
    return text


def _convention_field(tallies):
    merged = {}
    for tally in tallies:
        for name, (count, worst, convention) in tally.conventions.items():
            c0, w0, _ = merged.get(name, (0, 0.0, convention))
            merged[name] = (c0 + count, max(w0, worst), convention)
    if not merged:
        return None
    name = max(merged, key=lambda n: merged[n][0])
    count, worst, convention = merged[name]
    return {"name": name, "summary": convention.summary, "reference": convention.reference,
            "points": sum(c for c, _, _ in merged.values()), "max_ulp": worst,
            "all": [{"name": n, "points": c, "max_ulp": w} for n, (c, w, _) in merged.items()]}


def _record_worst(tallies):
    """The worst instance of every property that has one (so each failing property
    is named), then the next worst of all, at least :data:`checks.WORST` in all."""
    def rank(item):
        return item[0]

    firsts = sorted((t.worst[0] for t in tallies if t.worst), key=rank, reverse=True)
    rest = sorted((item for t in tallies for item in t.worst[1:]), key=rank, reverse=True)
    return [entry for _, entry in (firsts + rest)[:max(WORST, len(firsts))]]


def properties_record(evaluator, backend, function, fmt, cases, conventions):
    """The ``properties`` record of one backend, function and format.

    ``cases``: the accuracy check's ``[(set_name, point)]``; ``conventions``: the
    backend's declared conventions for ``function``. Besides the report contract's
    fields, the record has ``properties``: one entry per property with its ``name``,
    ``budget_ulp``, ``status``, ``points`` (instances judged), ``violations``,
    ``conventions``, ``excluded`` (instances left out: no exact shift, a result
    infinite where the identity needs it finite, another function's output outside
    its accuracy budget, ...), ``linked_outside`` (``{function: instances}`` of the
    last kind), ``max_ulp`` and ``message``.
    """
    spec = get_function(function)
    session = _Session(evaluator, backend, spec, fmt, conventions)
    base = _base_points(spec, cases)
    entries, tallies = [], []
    broken = None  # a failed call of the function itself, or a defect of the check
    for prop in spec.properties:
        tally = _Tally(prop, session)
        status, reason = None, ""
        implementation = MEASURES.get(prop.measure)
        if implementation is None:
            status, reason = "skip", f"no measure named {prop.measure!r}"
        elif not base:
            status, reason = "skip", "no finite in-domain case points"
        else:
            try:
                implementation(session, tally, base)
            except _Missing as error:
                status, reason = "skip", str(error)
            except _CallFailed as error:
                status, reason = "error", str(error)
                if error.own:
                    broken = broken or reason
            except Exception as error:  # a defect here must cost one record, not the run
                status, reason = "error", f"{type(error).__name__}: {error}"
                broken = broken or f"{prop.name}: {reason}"
        if status is not None:
            # instances judged before the property broke off say nothing: a skipped
            # ndtr(probit(p)) lists no violations of it, nor worst points
            tally = _Tally(prop, session)
        else:
            if tally.violations:
                status = "fail"
            elif tally.conventions:
                status = "convention"
            elif tally.points:
                status = "pass"
            else:
                status, reason = "skip", "no applicable points"
        entries.append(_entry(prop, tally, status, reason))
        tallies.append(tally)

    statuses = [e["status"] for e in entries]
    if broken:
        status = "error"
    elif "fail" in statuses:
        status = "fail"
    elif "convention" in statuses:
        status = "convention"
    elif "pass" in statuses:
        status = "pass"
    else:
        status = "skip"
    worst = _record_worst(tallies)
    measured = [t.max_ulp for t in tallies if t.max_ulp is not None]
    message = "; ".join(_summary(e) for e in entries)
    if broken:
        message = f"call failed: {broken}; {message}"
    return record(backend, spec.name, get_format(fmt).name, "properties", status=status,
                  message=message, budget=None, points=sum(t.points for t in tallies),
                  max_ulp=max(measured) if measured else None,
                  worst=worst, convention=_convention_field(tallies),
                  properties=entries)

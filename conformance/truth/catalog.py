"""The function catalog: the single source of truth for the 15 canonical functions.

Each :class:`Function` declares, once:

- ``kind`` (``"elementwise"``, ``"axis"`` or ``"loss"``), the canonical call
  ``signature`` a backend implements, and the *point* ``parameters`` the oracle and
  the case sets use (one point = one scalar for elementwise functions, one row for the
  axis functions and the row losses);
- ``definition(ctx, *point)``: the mathematical truth as an mpmath evaluation at the
  working precision of the mpmath context ``ctx`` (one value, or a tuple for a row);
- ``exact(*point)``: the values known exactly (special inputs, and the few finite
  points where the value is rational, e.g. ``sigmoid(0) = 1/2``), so the oracle never
  tries to confirm an exact zero by raising the precision forever;
- ``domain``, the special-value table ``specials``, the ``properties`` a later check
  verifies, the ``derivative`` for gradient checks, and per-format accuracy ``budgets``.

Why the definitions are written the way they are: the oracle raises the precision
until two evaluations agree, which is only sound if an evaluation at ``P`` bits is
accurate to roughly ``P`` bits. So every definition avoids cancellation it could avoid:
inputs enter exactly (a float is a dyadic rational), differences of inputs are taken
exactly (``fsub(..., exact=True)``), ``1 - p`` is formed exactly for ``p > 1/2``, the
log-sum-exp excludes its largest term (``log1p`` of the rest), and ``probit`` never
forms ``2p - 1`` in the tails (it cancels to -1 for ``p = 1e-300``). Escalation then
only has to absorb the genuinely ill-conditioned points.

Why escalation terminates: for nonzero rational inputs, ``exp`` and ``log`` give
transcendental values (Lindemann-Weierstrass, Baker), so apart from the rational points
listed in each ``exact`` hook, no value here is exactly representable or exactly
halfway between two format values. The one trap left is a value that is an exact
dyadic plus a vanishingly small transcendental term (``log_softmax([0, -10004])`` in
float16 is a midpoint minus 1e-4343): definitions return such values as
:class:`ExactPlus` so the oracle can see which side of the midpoint they fall on.

NaN anywhere in a point makes every output NaN; that rule is applied by
:meth:`Function.exact_values`, not repeated in each hook.
"""

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from mpmath.ctx_mp import MPContext

from refact.conformance.numbers.formats import exact_fraction, next_down, round_to_format
from refact.conformance.truth.fast import hard_sigmoid_exact_at, numpy_candidate, textbook_candidate

__all__ = [
    "Function", "Parameter", "SpecialValue", "Property", "Threshold", "ExactPlus", "UNDEFINED",
    "Option", "OptionDefinition", "REDUCTIONS",
    "ORACLE", "THRESHOLDS", "ROW_GAPS", "FUNCTIONS", "NAMES", "KINDS", "FAST_TRUTHS",
    "fast_truth_of", "get_function",
]

KINDS = ("elementwise", "axis", "loss")
INF = math.inf
NAN = math.nan


class _Marker:
    def __init__(self, name, doc):
        self._name = name
        self.__doc__ = doc

    def __repr__(self):
        return self._name


UNDEFINED = _Marker(
    "UNDEFINED",
    "The mathematics gives no value here (e.g. logit(2), softmax of an all -inf row): NaN is due.",
)
ORACLE = _Marker(
    "ORACLE",
    "A finite value with no exact form (e.g. softplus(0) = log 2): ask the oracle for it.",
)


@dataclass(frozen=True)
class Parameter:
    """One argument of a point. ``role`` tells the case generators what to draw:
    ``real`` (any float), ``probability`` (domain [0, 1]), ``label`` (a target in
    [0, 1]), ``row`` (a 1-D sequence of floats), ``class_index`` (an int into the row),
    ``temperature`` (a finite float > 0)."""

    name: str
    role: str
    description: str = ""


#: The reductions of the losses, as torch names them.
REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Option:
    """One keyword option of a function's call (named as the core's keyword), or an
    input kind (``target``: class indices or class probabilities).

    ``domain`` says in words which values are allowed; ``values`` lists them when the
    domain is finite (a reduction, a target kind); ``edges`` are the values the case
    sets must reach (smoothing 0 and 1, a zero weight, eps 0 and 1/2, ...)."""

    name: str
    domain: str
    description: str
    values: tuple = ()
    edges: tuple = ()


@dataclass(frozen=True)
class OptionDefinition:
    """The truth of one point of a call with options.

    ``term(ctx, point, options)``: the point's value with the options applied, at the
    working precision of ``ctx`` (an mpf, an :class:`ExactPlus`, or a tuple for rows),
    for a point the exact hook leaves open; ``exact(point, options)``: the exactly
    known value(s), or None; ``counted(point, options)``: what the point adds to the
    denominator of ``reduction="mean"`` (a Fraction: 1, or a class weight, or 0 for an
    ignored target). ``options`` never holds ``reduction``: the oracle reduces."""

    term: object
    exact: object
    counted: object = None


@dataclass(frozen=True)
class SpecialValue:
    """One row of a special-value table: ``args`` (a point) and what it must give.

    ``expected`` is a float (±inf included), a Fraction, a tuple of those for a row,
    :data:`UNDEFINED` (NaN due) or :data:`ORACLE` (finite, measured against the
    oracle). A zero in these tables is an exact zero whose sign the mathematics does
    not fix, so either sign is accepted.
    """

    args: tuple
    expected: object
    note: str = ""


@dataclass(frozen=True)
class Property:
    """A mathematical identity or bound a correct implementation keeps.

    ``budget_ulp`` is the tolerated violation in ULPs of the format at the compared
    value (0 for bounds that rounding cannot break). ``check`` names the measure that
    verifies it (one of the properties check's, e.g. ``"range"``, ``"monotone"``,
    ``"complement_symmetry"``; the property's own name when empty), so a function whose
    properties are of known kinds needs no code of its own there. A ``"range"`` check
    reads ``low`` and ``high`` (None: unbounded), and with ``labels_in_unit`` only
    judges points whose label lies in [0, 1]."""

    name: str
    description: str
    budget_ulp: float
    check: str = ""
    low: float = None
    high: float = None
    labels_in_unit: bool = False

    @property
    def measure(self):
        """The name of the measure that checks this property."""
        return self.check or self.name


@dataclass(frozen=True)
class Threshold:
    """A regime change of a function in a format, where a case set puts points.

    Bisected (``test`` set): the location is the smallest format value ``x`` in the
    ``region`` (``"unit"`` [0, 1], ``"positive"`` or ``"negative"`` finite values) with
    ``test(x, fmt, rounded)`` true, the test false below it (monotone); ``rounded(name,
    x)`` is the correctly rounded truth of catalog function ``name`` at ``x`` in
    ``fmt``. Anchored (``anchors`` set): ``anchors(fmt)`` lists fixed format values such
    as ``next_down(1)``. ``domain`` clips the neighbours a case set adds around each
    location."""

    name: str
    description: str
    test: object = None
    region: str = None
    anchors: object = None
    domain: tuple = (-math.inf, math.inf)


@dataclass(frozen=True)
class Function:
    """One canonical function. ``definition(ctx, *point)`` returns an mpf, an
    :class:`ExactPlus`, or a tuple of those for row outputs; ``exact(*point)`` returns
    a value, a list (rows) or None (see :meth:`exact_values`). ``derivative`` is, by
    kind: elementwise ``f'(ctx, x)``; axis ``vjp(ctx, row, v)`` (``v`` a row for
    softmax/log_softmax, a scalar for logsumexp); loss ``grad(ctx, *point)`` with
    respect to the first argument (a scalar, or a row for the row losses). Derivatives
    assume finite in-domain points."""

    name: str
    kind: str
    signature: str
    parameters: tuple
    vector_output: bool
    description: str
    domain: str
    definition: object = field(repr=False)
    exact: object = field(repr=False)
    derivative: object = field(repr=False)
    derivative_doc: str
    specials: tuple
    properties: tuple
    budgets: dict
    #: names in :data:`THRESHOLDS` where this function changes regime; a row function's
    #: case sets turn each location x into rows with the gap |x| (e.g. [0, -|x|])
    thresholds: tuple = ()
    #: the signs a scalar threshold location is used with ((1, -1) for an even function)
    threshold_signs: tuple = (1.0,)
    #: the sweep's float64 candidate (a :class:`~refact.conformance.truth.fast.FastTruth`),
    #: None where there is none yet
    fast: object = field(default=None, repr=False)
    #: ``derivative_exact(*point[, cotangent])``: the derivative values known exactly
    #: (as ``exact`` is for the values): a value, a list for rows, or None
    derivative_exact: object = field(default=None, repr=False)
    #: ``(name, sign)`` where the derivative is the catalog function ``name`` at
    #: ``sign * x`` (negation is exact): the gradient check then judges autograd on the
    #: whole dense set with that function's fast truths, as the accuracy check does
    derivative_as: tuple = ()
    #: the :class:`Option` records of the call's keyword options (and input kinds),
    #: each with its domain and the edges the case sets must reach
    options: tuple = ()
    #: the :class:`OptionDefinition`: the truth of one point with the options applied
    with_options: object = field(default=None, repr=False)

    def option(self, name):
        """The :class:`Option` called ``name``; ValueError names the declared ones."""
        for option in self.options:
            if option.name == name:
                return option
        raise ValueError(f"{self.name} has no option {name!r}; declared: "
                         f"{', '.join(o.name for o in self.options) or 'none'}")

    @property
    def arity(self):
        return len(self.parameters)

    def output_size(self, args):
        """Number of output values of a point (1 unless the output is a row)."""
        return len(args[0]) if self.vector_output else 1

    def exact_values(self, args):
        """The exactly known outputs of a point: a list with one entry per output
        value (a Fraction, ±inf or NaN; ``None`` where the value must be computed),
        or ``None`` when nothing is known exactly. NaN in any input gives all NaN."""
        n = self.output_size(args)
        if _contains_nan(args):
            return [NAN] * n
        known = self.exact(*args)
        if known is None:
            return None
        if not self.vector_output:
            known = [known]
        if len(known) != n:
            raise AssertionError(f"{self.name}: exact hook returned {len(known)} values for {n}")
        return list(known)

    def evaluate(self, ctx, args):
        """``definition`` at the working precision of ``ctx``, always as a list (of
        mpf numbers and :class:`ExactPlus` pairs)."""
        value = self.definition(ctx, *args)
        return list(value) if self.vector_output else [value]

    def _derivative_arguments(self, args, cotangent):
        # the VJP of a row function takes the cotangent; the other derivatives do not
        return (*args, cotangent) if self.kind == "axis" else tuple(args)

    def evaluate_derivative(self, ctx, args, cotangent):
        """``derivative`` at the working precision of ``ctx``, always as a list."""
        value = self.derivative(ctx, *self._derivative_arguments(args, cotangent))
        return list(value) if isinstance(value, (list, tuple)) else [value]

    def exact_derivative(self, args, cotangent):
        """The exactly known derivative values of a finite in-domain point, one entry
        per value (None where it must be computed), or None when none is known."""
        if self.derivative_exact is None:
            return None
        known = self.derivative_exact(*self._derivative_arguments(args, cotangent))
        if known is None:
            return None
        return list(known) if isinstance(known, (list, tuple)) else [known]


def _contains_nan(args):
    for a in args:
        if isinstance(a, (tuple, list)):
            if any(x != x for x in a):
                return True
        elif a != a:
            return True
    return False


# --- mpmath helpers -------------------------------------------------------------------


@dataclass(frozen=True)
class ExactPlus:
    """A value returned by a definition as ``exact + rest``: ``exact`` is an exact
    mpf (it carries no evaluation error), ``rest`` is evaluated at the working
    precision and carries all of it.

    Why: ``log_softmax`` of ``[0, -10004]`` in float16 is ``-10004 - 1e-4343``, and
    ``-10004`` is exactly halfway between two float16 values. Evaluated as one number
    at P bits it rounds to the midpoint itself, and no precision below 14,000 bits can
    say which way it goes. Kept apart, the oracle sees that a negative ``rest`` far
    below the format's spacing moves the value off the midpoint downwards.
    """

    exact: object
    rest: object


def exact_mpf(ctx, value):
    """The exact mpf of a float, int, dyadic Fraction or mpf (no rounding); a
    non-dyadic Fraction is rounded at the working precision."""
    if isinstance(value, float) or hasattr(value, "_mpf_"):
        return ctx.convert(value)  # floats and mpfs convert exactly
    q = Fraction(value)
    den = q.denominator
    if den & (den - 1) == 0:
        from mpmath.libmp import from_man_exp

        return ctx.make_mpf(from_man_exp(q.numerator, 1 - den.bit_length()))
    return ctx.mpf(q.numerator) / q.denominator


def _is_finite(x):
    return x == x and x not in (INF, -INF)


# --- elementwise definitions ----------------------------------------------------------


def _sigmoid(ctx, x):
    x = exact_mpf(ctx, x)
    if x >= 0:
        return 1 / (1 + ctx.exp(-x))
    e = ctx.exp(x)  # e/(1+e) keeps full relative accuracy when sigmoid(x) is tiny
    return e / (1 + e)


def _sigmoid_grad(ctx, x):
    e = ctx.exp(-abs(exact_mpf(ctx, x)))  # sigma(x)(1 - sigma(x)) = e^-|x| / (1 + e^-|x|)^2
    return e / (1 + e) ** 2


def _log_sigmoid(ctx, x):
    x = exact_mpf(ctx, x)
    if x >= 0:
        return -ctx.log1p(ctx.exp(-x))
    return ExactPlus(x, -ctx.log1p(ctx.exp(x)))


def _softplus(ctx, x):
    x = exact_mpf(ctx, x)
    if x <= 0:
        return ctx.log1p(ctx.exp(x))
    return ExactPlus(x, ctx.log1p(ctx.exp(-x)))


def mp_logit(ctx, p):
    q = exact_fraction(p)
    if q < Fraction(1, 4):
        return ctx.log(exact_mpf(ctx, q)) - ctx.log1p(-exact_mpf(ctx, q))
    if q > Fraction(3, 4):
        return ctx.log(exact_mpf(ctx, q)) - ctx.log(exact_mpf(ctx, 1 - q))  # 1 - p is exact
    # Near 1/2, log(p) - log(1-p) cancels; log1p of the exact (2p-1)/(1-p) does not.
    return ctx.log1p(exact_mpf(ctx, 2 * q - 1) / exact_mpf(ctx, 1 - q))


def _hard_sigmoid_exact(x):
    if x == INF:
        return Fraction(1)
    if x == -INF:
        return Fraction(0)
    return min(Fraction(1), max(Fraction(0), exact_fraction(x) / 6 + Fraction(1, 2)))


def _hard_sigmoid(ctx, x):
    return exact_mpf(ctx, _hard_sigmoid_exact(x))


def _ndtr(ctx, x):
    x = exact_mpf(ctx, x)
    # erfc(-x/sqrt2)/2 has no cancellation on either side; the rounding of x/sqrt2 is
    # amplified by about x^2 in the left tail, so carry that many extra bits there.
    extra = int(x * x).bit_length() if x < 0 else 0
    with ctx.extraprec(extra + 10):
        value = ctx.erfc(-x / ctx.sqrt(2)) / 2
    return +value


def _probit(ctx, p):
    q = exact_fraction(p)
    if q > Fraction(1, 2):
        return -_lower_quantile(ctx, 1 - q)  # 1 - p is exact for p > 1/2
    return _lower_quantile(ctx, q)


def _lower_quantile(ctx, q):
    """The x < 0 with ndtr(x) = q, for 0 < q < 1/2, by Newton's method.

    mpmath's erfinv(2q - 1) cannot be used in the tail: 2q - 1 rounds to -1 at any
    working precision below -log2(q) bits. Newton's residual ndtr(x) - q is formed as
    erfc(-x/sqrt2)/2 - q in the tail and as (erf(x/sqrt2) - (2q - 1))/2 (2q - 1 exact)
    near the centre, so it has full relative accuracy where it is used. The start
    comes from the standard library's inverse normal CDF (Wichura's AS 241, about 16
    digits), so two or three steps reach any precision.
    """
    from statistics import NormalDist

    target = ctx.prec
    x0 = NormalDist().inv_cdf(float(q))
    extra = 24 + int(x0 * x0).bit_length() + max(0, -math.frexp(x0)[1])
    with ctx.extraprec(extra):
        Q = exact_mpf(ctx, q)
        centre = q >= Fraction(1, 8)
        two_q_minus_1 = exact_mpf(ctx, 2 * q - 1)
        sqrt2 = ctx.sqrt(2)
        inv_sqrt_2pi = 1 / ctx.sqrt(2 * ctx.pi)
        # The oracle asks again at twice the precision: start from the last answer.
        x = ctx.convert(_QUANTILE_STARTS.get(q, x0))
        for _ in range(100):
            if centre:
                residual = (ctx.erf(x / sqrt2) - two_q_minus_1) / 2
            else:
                residual = ctx.erfc(-x / sqrt2) / 2 - Q
            step = residual / (inv_sqrt_2pi * ctx.exp(-x * x / 2))
            x -= step
            # Newton's next error is about |x|/2 * step^2 (ndtr''/ndtr' = -x): stop once
            # that is below the target, rather than paying for one more tiny step.
            if not step or (abs(x) / 2 + 1) * step * step <= abs(x) * ctx.ldexp(1, -target - 8):
                break
    if len(_QUANTILE_STARTS) > 4096:
        _QUANTILE_STARTS.clear()
    _QUANTILE_STARTS[q] = x
    return +x


#: q -> the last quantile computed, a Newton start only (so its precision never matters).
_QUANTILE_STARTS = {}


# --- rows: one shared log-sum-exp -----------------------------------------------------


def _row_log_probabilities(ctx, row, temperature=None):
    """log softmax(row / T) for a row with no NaN, at most one +inf and at least one
    entry that is not -inf (other rows are settled by the exact hooks).

    Returns ``(k, d, r)``: ``k`` the index of a largest entry, ``d[j] = (x_j - x_k)/T``
    with the subtraction exact (``None`` for -inf), and ``r = sum_{j != k} exp(d_j)``.
    Then log softmax_j = d_j - log1p(r), softmax_j = exp(d_j) / (1 + r) and
    logsumexp = x_k + log1p(r): leaving the largest term out of the sum keeps
    log1p(r) accurate when every other term is tiny (a gap of 10^4 would otherwise
    need 14,000 bits to see).
    """
    k = max(range(len(row)), key=lambda j: row[j])
    xk = exact_mpf(ctx, row[k])
    scale = None if temperature is None else exact_mpf(ctx, temperature)
    d = []
    r = ctx.zero
    for j, x in enumerate(row):
        if x == -INF:
            d.append(None)
            continue
        dj = ctx.fsub(exact_mpf(ctx, x), xk, exact=True)
        if scale is not None:
            dj = dj / scale
        d.append(dj)
        if j != k:
            r += ctx.exp(dj)  # positive terms: sequential sum, no cancellation
    return k, d, r


def _log_softmax_list(ctx, row, temperature=None):
    """log softmax(row / T) as a list of numbers with -inf entries; handles one +inf."""
    if INF in row:
        return [ctx.zero if x == INF else ctx.ninf for x in row]
    _, d, r = _row_log_probabilities(ctx, row, temperature)
    lse = ctx.log1p(r)
    return [ctx.ninf if dj is None else dj - lse for dj in d]


def _softmax(ctx, row):
    _, d, r = _row_log_probabilities(ctx, row)
    one_plus_r = 1 + r
    return tuple(ctx.zero if dj is None else ctx.exp(dj) / one_plus_r for dj in d)


def _log_softmax(ctx, row):
    _, d, r = _row_log_probabilities(ctx, row)
    lse = ctx.log1p(r)
    return tuple(ctx.ninf if dj is None else ExactPlus(dj, -lse) for dj in d)


def _logsumexp(ctx, row):
    k, _, r = _row_log_probabilities(ctx, row)
    return ExactPlus(exact_mpf(ctx, row[k]), ctx.log1p(r))


def _cross_entropy(ctx, logits, target):
    _, d, r = _row_log_probabilities(ctx, logits)
    return ExactPlus(ctx.fneg(d[target], exact=True), ctx.log1p(r))


def _distillation_loss(ctx, student, teacher, temperature):
    """T^2 KL(p_t || p_s) with p = softmax(row / T).

    Two forms, neither of which cancels where it is used (a, b = teacher/T, student/T;
    ``top`` the teacher's largest entry, ``m`` the student's):

    - centred: with u_j = b_j - a_j on the teacher's support and w = u - E_t[u],
      KL = log1p(E_t[e^w - 1 - w] + student mass outside the teacher's support), a
      sum of non-negative terms; the textbook sum of p_t (log p_t - log p_s) cancels to
      O(w^2) from terms of O(w) when the rows are close;
    - split, when the teacher is one-hot at the working precision: T^2 KL =
      T (s_m - s_top) + T^2 (log1p(r_s) - log1p(r_t) + E_t[delta]), an exact part
      (which can be a rounding midpoint) plus a rest that cannot cancel it.

    Quotients by T feed exp(), so they are formed with absolute accuracy: the whole
    evaluation carries as many extra bits as the largest |row spread / T| has.
    """
    t = exact_mpf(ctx, temperature)
    spread = 0
    for row in (student, teacher):
        finite = [exact_mpf(ctx, x) for x in row if _is_finite(x)]
        if len(finite) > 1:
            span = ctx.fsub(max(finite), min(finite), exact=True)
            if span:
                spread = max(spread, ctx.mag(span) - ctx.mag(t))
    with ctx.extraprec(spread + 16):
        value = _distillation_terms(ctx, student, teacher, t, temperature)
    if isinstance(value, ExactPlus):
        return ExactPlus(value.exact, +value.rest)
    return +value


def _distillation_terms(ctx, student, teacher, t, temperature):
    support = _support(teacher)
    if len(support) == 1:  # one-hot teacher (a single +inf, or one finite entry)
        top = support[0]
        m, _, r_s = _row_log_probabilities(ctx, student, temperature)
        gap = ctx.fsub(exact_mpf(ctx, student[m]), exact_mpf(ctx, student[top]), exact=True)
        return ExactPlus(ctx.fmul(t, gap, exact=True), t * t * ctx.log1p(r_s))
    # No +inf remains: any +inf makes a one-hot teacher or an exact case.
    top, d_t, r_t = _row_log_probabilities(ctx, teacher, temperature)
    log_z = ctx.log1p(r_t)  # log Z_t - t_top / T
    weights = {j: ctx.exp(d_t[j] - log_z) for j in support}

    def offset(j):
        """((s_j - s_top) - (t_j - t_top)) / T: u_j measured from the teacher's top."""
        diff = ctx.fsub(ctx.fsub(exact_mpf(ctx, student[j]), exact_mpf(ctx, student[top]), exact=True),
                        ctx.fsub(exact_mpf(ctx, teacher[j]), exact_mpf(ctx, teacher[top]), exact=True),
                        exact=True)
        return diff / t

    v = {j: offset(j) for j in support}
    m = max((j for j, x in enumerate(student) if x != -INF), key=lambda j: student[j])
    gap = ctx.fsub(exact_mpf(ctx, student[m]), exact_mpf(ctx, student[top]), exact=True)
    if gap and ctx.mag(r_t) < -ctx.prec:
        _, _, r_s = _row_log_probabilities(ctx, student, temperature)
        mean_delta = -ctx.fsum(weights[j] * v[j] for j in support)
        rest = t * t * (ctx.log1p(r_s) - log_z + mean_delta)
        return ExactPlus(ctx.fmul(t, gap, exact=True), rest)
    mean = ctx.fsum(weights[j] * v[j] for j in support)
    total = ctx.fsum(weights[j] * _exp_minus_one_minus(ctx, v[j] - mean) for j in support)
    for j, x in enumerate(student):  # student mass where the teacher has none
        if x != -INF and j not in weights:
            a = ctx.fsub(exact_mpf(ctx, x), exact_mpf(ctx, student[top]), exact=True)
            total += ctx.exp(a / t - mean - log_z)
    return t * t * ctx.log1p(total)


def _exp_minus_one_minus(ctx, w):
    """e^w - 1 - w without the cancellation of expm1(w) - w for small w."""
    if not w:
        return ctx.zero
    if abs(w) < ctx.mpf(1) / 256:
        term = w * w / 2
        total = term
        n = 2
        eps = ctx.ldexp(1, -ctx.prec - 8)
        while abs(term) > abs(total) * eps:
            n += 1
            term = term * w / n
            total += term
        return total
    with ctx.extraprec(16):
        return ctx.expm1(w) - w


def mp_binary_cross_entropy(ctx, p, y):
    q = exact_fraction(p)
    # log(1 - p): log1p(-p) below 1/2, log of the exact 1 - p above.
    log_1mp = ctx.log1p(-exact_mpf(ctx, q)) if q <= Fraction(1, 2) else ctx.log(exact_mpf(ctx, 1 - q))
    if not 0 <= y <= 1:
        # -(log(1-p) + y logit(p)): a soft label outside [0, 1] would make the usual
        # two terms huge and of opposite signs (they cancel to log 2 at p = 1/2).
        return -(log_1mp + exact_mpf(ctx, y) * mp_logit(ctx, p))
    loss = ctx.zero  # two non-negative terms; a zero weight drops its log
    if y != 0:
        loss -= exact_mpf(ctx, y) * ctx.log(exact_mpf(ctx, q))
    if y != 1:
        loss -= exact_mpf(ctx, 1 - exact_fraction(y)) * log_1mp
    return loss


def _binary_cross_entropy_with_logits(ctx, x, y):
    x_mp = exact_mpf(ctx, x)
    # softplus(x) - x*y as an exact product plus a log1p >= 0 (both terms >= 0 for y in
    # [0, 1]); the exact product may be a rounding midpoint, hence ExactPlus.
    if x >= 0:
        exact = ctx.fmul(exact_mpf(ctx, 1 - exact_fraction(y)), x_mp, exact=True)
        return ExactPlus(exact, ctx.log1p(ctx.exp(-x_mp)))
    return ExactPlus(ctx.fmul(exact_mpf(ctx, -exact_fraction(y)), x_mp, exact=True), ctx.log1p(ctx.exp(x_mp)))


# --- exact hooks ----------------------------------------------------------------------


def _limits(at_zero=None, pos_inf=None, neg_inf=None):
    def exact(x):
        if x == 0:
            return at_zero
        if x == INF:
            return pos_inf
        if x == -INF:
            return neg_inf
        return None

    return exact


def _probability_to_quantile_exact(at_half):
    """logit and probit share their exact points: 0 at 1/2, -inf at 0, +inf at 1."""

    def exact(p):
        if not 0 <= p <= 1:
            return NAN
        if p == 0:
            return -INF
        if p == 1:
            return INF
        if p == 0.5:
            return at_half
        return None

    return exact


def _row_shape(row):
    """(number of +inf entries, indices of finite entries) of a NaN-free row."""
    return sum(1 for x in row if x == INF), [j for j, x in enumerate(row) if _is_finite(x)]


def _softmax_exact(row):
    n = len(row)
    n_pos, finite = _row_shape(row)
    if n_pos >= 2 or (n_pos == 0 and not finite):
        return [NAN] * n  # inf/inf or 0/0
    if n_pos == 1:
        return [Fraction(1) if x == INF else Fraction(0) for x in row]
    if all(row[j] == row[finite[0]] for j in finite):
        share = Fraction(1, len(finite))
        return [Fraction(0) if x == -INF else share for x in row]
    return [Fraction(0) if x == -INF else None for x in row]


def _log_softmax_exact(row):
    n = len(row)
    n_pos, finite = _row_shape(row)
    if n_pos >= 2 or (n_pos == 0 and not finite):
        return [NAN] * n
    if n_pos == 1:
        return [Fraction(0) if x == INF else -INF for x in row]
    if len(finite) == 1:
        return [Fraction(0) if _is_finite(x) else -INF for x in row]
    return [-INF if x == -INF else None for x in row]


def _logsumexp_exact(row):
    n_pos, finite = _row_shape(row)
    if n_pos:
        return INF
    if not finite:
        return -INF
    if len(finite) == 1:
        return exact_fraction(row[finite[0]])
    return None


def _check_target(logits, target):
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(f"cross_entropy: target must be an int class index, not {target!r}")
    if not 0 <= target < len(logits):
        raise ValueError(f"cross_entropy: target {target} out of range for {len(logits)} classes")


def _cross_entropy_exact(logits, target):
    _check_target(logits, target)
    n_pos, finite = _row_shape(logits)
    if n_pos >= 2 or (n_pos == 0 and not finite):
        return NAN
    if n_pos == 1:
        return Fraction(0) if logits[target] == INF else INF
    if logits[target] == -INF:
        return INF
    if finite == [target]:
        return Fraction(0)
    return None


def _support(row):
    """Indices where softmax(row) > 0, or None when softmax(row) is undefined."""
    n_pos, finite = _row_shape(row)
    if n_pos >= 2 or (n_pos == 0 and not finite):
        return None
    if n_pos == 1:
        return [row.index(INF)]
    return finite


def _distillation_exact(student, teacher, temperature):
    if len(student) != len(teacher) or not student:
        raise ValueError("distillation_loss: student and teacher rows must have the same nonzero length")
    if not (_is_finite(temperature) and temperature > 0):
        return NAN
    s, t = _support(student), _support(teacher)
    if s is None or t is None:
        return NAN
    if not set(t) <= set(s):
        return INF  # the teacher puts mass where the student has none
    if s == t:
        if len(t) == 1:
            return Fraction(0)
        if all(_is_finite(student[j]) for j in t):
            shift = {exact_fraction(student[j]) - exact_fraction(teacher[j]) for j in t}
            if len(shift) == 1:
                return Fraction(0)  # same distribution: the rows differ by a constant
    return None


def _binary_cross_entropy_exact(p, y):
    if not (0 <= p <= 1) or not _is_finite(y):
        return NAN
    if p == 0:
        return Fraction(0) if y == 0 else math.copysign(INF, y)
    if p == 1:
        return Fraction(0) if y == 1 else math.copysign(INF, 1 - y)
    return None


def _bce_with_logits_exact(x, y):
    if not _is_finite(y):
        return NAN
    if x == INF:
        return Fraction(0) if y == 1 else math.copysign(INF, 1 - y)
    if x == -INF:
        return Fraction(0) if y == 0 else math.copysign(INF, y)
    return None


# --- derivatives ----------------------------------------------------------------------


def _d_sigmoid_grad(ctx, x):
    x = exact_mpf(ctx, x)
    return -_sigmoid_grad(ctx, x) * ctx.tanh(x / 2)  # sigma'(1 - 2 sigma)


def _d_logit(ctx, p):
    q = exact_fraction(p)
    return 1 / (exact_mpf(ctx, q) * exact_mpf(ctx, 1 - q))


def _d_hard_sigmoid(ctx, x):
    return ctx.mpf(1) / 6 if -3 < x < 3 else ctx.zero


def _d_ndtr(ctx, x):
    x = exact_mpf(ctx, x)
    return ctx.exp(-x * x / 2) / ctx.sqrt(2 * ctx.pi)


def _d_probit(ctx, p):
    z = _probit(ctx, p)
    return ctx.sqrt(2 * ctx.pi) * ctx.exp(z * z / 2)


def _vjp_softmax(ctx, row, v):
    # s_j (v_j - <v, s>) written as s_j sum_k (v_j - v_k) s_k (the shares sum to 1): the
    # differences of cotangent entries are exact, so v_j - <v, s> does not cancel where
    # the row's mass sits on j
    s = _softmax(ctx, row)
    v = [ctx.convert(vj) for vj in v]
    return tuple(sj * ctx.fsum(ctx.fsub(vj, vk, exact=True) * sk for vk, sk in zip(v, s))
                 for vj, sj in zip(v, s))


def _vjp_log_softmax(ctx, row, v):
    # v_j - s_j sum(v) written as sum_{k != j} (v_j s_k - s_j v_k): 1 - s_j is formed as
    # the sum of the other shares, so the row's mass sitting on j cancels nothing
    s = _softmax(ctx, row)
    v = [ctx.convert(vj) for vj in v]
    return tuple(ctx.fsum(vj * sk - sj * vk for k, (vk, sk) in enumerate(zip(v, s)) if k != j)
                 for j, (vj, sj) in enumerate(zip(v, s)))


def _vjp_logsumexp(ctx, row, v):
    return tuple(ctx.convert(v) * sj for sj in _softmax(ctx, row))


def _d_sigmoid_grad_exact(x):
    return Fraction(0) if x == 0 else None  # sigma'(0) (1 - 2 sigma(0)) = 0


def _d_logit_exact(p):
    q = exact_fraction(p)
    return 1 / (q * (1 - q))  # rational at every dyadic p in (0, 1)


def _d_hard_sigmoid_exact(x):
    return Fraction(1, 6) if -3 < x < 3 else Fraction(0)


def _exact_shares(row):
    """The exact softmax of a finite row where every share is known (a constant row:
    1/n each), else None."""
    shares = _softmax_exact(row)
    return None if any(s is None for s in shares) else shares


def _vjp_softmax_exact(row, v):
    s = _exact_shares(row)
    if s is None:
        return None
    w = sum(exact_fraction(vj) * sj for vj, sj in zip(v, s))
    return [sj * (exact_fraction(vj) - w) for vj, sj in zip(v, s)]


def _vjp_log_softmax_exact(row, v):
    total = sum(exact_fraction(vj) for vj in v)
    s = _exact_shares(row)
    if s is None:
        return [exact_fraction(vj) for vj in v] if total == 0 else None
    return [exact_fraction(vj) - sj * total for vj, sj in zip(v, s)]


def _vjp_logsumexp_exact(row, v):
    s = _exact_shares(row)
    return None if s is None else [exact_fraction(v) * sj for sj in s]


def _d_binary_cross_entropy_exact(p, y):
    q = exact_fraction(p)
    return (q - exact_fraction(y)) / (q * (1 - q))  # rational everywhere in (0, 1)


def _d_bce_with_logits_exact(x, y):
    return Fraction(1, 2) - exact_fraction(y) if x == 0 else None


def _d_cross_entropy_exact(logits, target):
    s = _exact_shares(logits)
    return None if s is None else [sj - (1 if j == target else 0) for j, sj in enumerate(s)]


def _d_distillation_exact(student, teacher, temperature):
    shifts = {exact_fraction(a) - exact_fraction(b) for a, b in zip(student, teacher)}
    # rows that differ by a constant have the same softmax: the gradient is 0
    return [Fraction(0)] * len(student) if len(shifts) == 1 else None


def _d_binary_cross_entropy(ctx, p, y):
    q = exact_fraction(p)
    return (exact_mpf(ctx, q) - exact_mpf(ctx, y)) / (exact_mpf(ctx, q) * exact_mpf(ctx, 1 - q))


def _d_bce_with_logits(ctx, x, y):
    # sigma(x) - y as (1 - y) sigma(x) - y sigma(-x): for a label 0 or 1 one term, so no
    # cancellation where sigma(x) is next to the label (the truth at x = 200, y = 1 is
    # -e**-200, which sigma(x) - 1 loses at any working precision below ~300 bits)
    y = exact_fraction(y)
    x = exact_mpf(ctx, x)
    return exact_mpf(ctx, 1 - y) * _sigmoid(ctx, x) - exact_mpf(ctx, y) * _sigmoid(ctx, -x)


def _d_cross_entropy(ctx, logits, target):
    # softmax - onehot, with s_t - 1 formed as -(sum of the other shares): no cancellation
    s = _softmax(ctx, logits)
    rest = ctx.fsum(sk for k, sk in enumerate(s) if k != target)
    return tuple(-rest if j == target else sj for j, sj in enumerate(s))


def _d_distillation(ctx, student, teacher, temperature):
    # T (p_s - p_t); where a share is above 1/2 the difference is taken of the
    # complements (the other shares' sums), which do not round to 0 beside 1
    t = exact_mpf(ctx, temperature)
    p_s = [ctx.exp(v) for v in _log_softmax_list(ctx, student, temperature)]
    p_t = [ctx.exp(v) for v in _log_softmax_list(ctx, teacher, temperature)]

    def rest(p, j):
        return ctx.fsum(pk for k, pk in enumerate(p) if k != j)

    half = ctx.mpf(0.5)
    return tuple(t * (rest(p_t, j) - rest(p_s, j)) if a > half or b > half else t * (a - b)
                 for j, (a, b) in enumerate(zip(p_s, p_t)))


# --- budgets --------------------------------------------------------------------------
#
# Default accuracy budgets in ULPs of the format at the truth. A good float64/float32
# implementation of a composite of exp/log lands within 1-2 ULP; ndtr/probit within a
# few; a row reduction adds a few roundings. float16/bfloat16 computed internally in
# float32 and rounded once should stay within 1 ULP; the row functions whose result
# is a small difference of float32 intermediates (log_softmax near 0, the losses) get 2.

def _budgets(wide, narrow):
    return {"float64": wide, "float32": wide, "float16": narrow, "bfloat16": narrow}


ELEMENTWISE_BUDGETS = _budgets(2.0, 1.0)
EXACTISH_BUDGETS = _budgets(1.0, 1.0)
SPECIAL_FUNCTION_BUDGETS = _budgets(4.0, 1.0)
ROW_BUDGETS = _budgets(4.0, 1.0)
ROW_LOG_BUDGETS = _budgets(4.0, 2.0)
LOSS_BUDGETS = _budgets(4.0, 2.0)

# --- thresholds: where functions change regime in a format --------------------------------


def _crossing(name, description, function, test, region):
    """A threshold bisected on the correctly rounded value ``r`` of ``function``:
    ``test(r, x, fmt)``."""
    return Threshold(name, description,
                     lambda x, fmt, rounded: test(rounded(function, x), x, fmt), region)


def _exp_at_least_overflow(y, fmt):
    """exp(y) >= the overflow threshold of fmt, decided at 256 bits (exp of a nonzero
    rational is transcendental, so it is never equal)."""
    ctx = MPContext()  # a private context: the oracle's precision is left alone
    ctx.prec = 256
    bound = fmt.overflow_threshold
    return ctx.exp(ctx.convert(y)) >= ctx.mpf(bound.numerator) / bound.denominator


_THRESHOLDS = [
    _crossing("sigmoid_leaves_half", "smallest x > 0 with sigmoid(x) rounding above 1/2",
              "sigmoid", lambda r, x, f: r > 0.5, "unit"),
    _crossing("sigmoid_rounds_to_one", "smallest x where sigmoid(x) rounds to 1",
              "sigmoid", lambda r, x, f: r == 1.0, "positive"),
    _crossing("sigmoid_normal", "smallest x where sigmoid(x) is normal (subnormal below)",
              "sigmoid", lambda r, x, f: r >= f.smallest_normal, "negative"),
    _crossing("sigmoid_nonzero", "smallest x where sigmoid(x) does not round to 0",
              "sigmoid", lambda r, x, f: r > 0.0, "negative"),
    _crossing("sigmoid_grad_leaves_quarter", "smallest x > 0 with sigmoid_grad(x) rounding below 1/4",
              "sigmoid_grad", lambda r, x, f: r < 0.25, "unit"),
    _crossing("sigmoid_grad_subnormal", "smallest x > 0 where sigmoid_grad(x) is subnormal",
              "sigmoid_grad", lambda r, x, f: r < f.smallest_normal, "positive"),
    _crossing("sigmoid_grad_zero", "smallest x > 0 where sigmoid_grad(x) rounds to 0",
              "sigmoid_grad", lambda r, x, f: r == 0.0, "positive"),
    _crossing("log_sigmoid_leaves_x", "smallest x < 0 where log_sigmoid(x) no longer rounds to x",
              "log_sigmoid", lambda r, x, f: r != x, "negative"),
    _crossing("log_sigmoid_subnormal", "smallest x > 0 where log_sigmoid(x) is subnormal",
              "log_sigmoid", lambda r, x, f: abs(r) < f.smallest_normal, "positive"),
    _crossing("log_sigmoid_zero", "smallest x > 0 where log_sigmoid(x) rounds to -0",
              "log_sigmoid", lambda r, x, f: r == 0.0, "positive"),
    _crossing("softplus_equals_x", "smallest x > 0 where softplus(x) rounds to x",
              "softplus", lambda r, x, f: r == x, "positive"),
    _crossing("softplus_normal", "smallest x where softplus(x) is normal (subnormal below)",
              "softplus", lambda r, x, f: r >= f.smallest_normal, "negative"),
    _crossing("softplus_nonzero", "smallest x where softplus(x) does not round to 0",
              "softplus", lambda r, x, f: r > 0.0, "negative"),
    _crossing("ndtr_leaves_half", "smallest x > 0 with ndtr(x) rounding above 1/2",
              "ndtr", lambda r, x, f: r > 0.5, "unit"),
    _crossing("ndtr_rounds_to_one", "smallest x where ndtr(x) rounds to 1",
              "ndtr", lambda r, x, f: r == 1.0, "positive"),
    _crossing("ndtr_normal", "smallest x where ndtr(x) is normal (subnormal below)",
              "ndtr", lambda r, x, f: r >= f.smallest_normal, "negative"),
    _crossing("ndtr_nonzero", "smallest x where ndtr(x) does not round to 0",
              "ndtr", lambda r, x, f: r > 0.0, "negative"),
    Threshold("exp_overflow", "smallest x where exp(x) overflows to inf",
              lambda x, f, rounded: _exp_at_least_overflow(x, f), "positive"),
    Threshold("exp_neg_overflow", "smallest x where exp(-x) no longer overflows",
              lambda x, f, rounded: not _exp_at_least_overflow(-x, f), "negative"),
    Threshold("probability_near_zero", "the smallest subnormal and the smallest normal probabilities",
              anchors=lambda f: [f.smallest_subnormal, f.smallest_normal], domain=(0.0, 1.0)),
    Threshold("probability_near_half", "probabilities next to 1/2 (logit and probit cross 0)",
              anchors=lambda f: [0.5], domain=(0.0, 1.0)),
    Threshold("probability_near_one", "the largest probabilities below 1 (1 - p is tiny)",
              anchors=lambda f: [next_down(1.0, f)], domain=(0.0, 1.0)),
    Threshold("hard_sigmoid_kinks", "the kinks of hard_sigmoid at -3 and 3, and its centre",
              anchors=lambda f: [-3.0, 0.0, 3.0]),
    Threshold("torch_log_clamp", "p near exp(-100), where PyTorch clamps log(p) at -100",
              anchors=lambda f: [v for v in [round_to_format(math.exp(-100.0), f)] if v > 0],
              domain=(0.0, 1.0)),
]
THRESHOLDS = {t.name: t for t in _THRESHOLDS}

#: Where a row's largest entry meets a gap g = |x| of these thresholds: exp(-g) vanishes
#: beside 1 (about 17 in float32, 37 in float64), turns subnormal (about 87 / 708),
#: rounds to 0 (about 104 / 745), and log_softmax of the largest entry rounds to 0.
ROW_GAPS = ("sigmoid_rounds_to_one", "sigmoid_normal", "sigmoid_nonzero", "log_sigmoid_zero")


# --- options: the truth of a point with its call's options applied ---------------------
# Each function below declares its options (the core's keyword names) and says how they
# change the value of one point; the oracle applies the reduction over a batch.


def _dyadic(q):
    return q.denominator & (q.denominator - 1) == 0


def _non_negative(value, function, argument):
    q = exact_fraction(value)  # ValueError for NaN and the infinities
    if q < 0:
        raise ValueError(f"{function}: {argument} must be >= 0, got {value!r}")
    return q


def _smoothing(options, function):
    eps = exact_fraction(options.get("label_smoothing", 0.0))
    if not 0 <= eps <= 1:
        raise ValueError(f"{function}: label_smoothing must be in [0, 1], got "
                         f"{options.get('label_smoothing')!r}")
    return eps


def _class_coefficients(logits, target, options):
    """The exact coefficient a_c of -log softmax(logits)_c in the loss, per class c, or
    None for an ignored target: with the smoothed target (1 - eps) y + eps / C (torch's
    ``label_smoothing``, https://docs.pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html)
    and the class weights w, a_c = w_c ((1 - eps) y_c + eps / C) for class probabilities
    y, and a_c = w_c eps / C + [c = t] w_t (1 - eps) for a class index t."""
    classes = len(logits)
    weight = options.get("weight")
    if weight is None:
        w = [Fraction(1)] * classes
    else:
        if len(weight) != classes:
            raise ValueError(f"cross_entropy: weight must hold {classes} values (one per class), "
                             f"got {len(weight)}")
        w = [_non_negative(v, "cross_entropy", "weight") for v in weight]
    eps = _smoothing(options, "cross_entropy")
    if isinstance(target, tuple):
        if len(target) != classes:
            raise ValueError(f"cross_entropy: a probability target must hold {classes} values, "
                             f"got {len(target)}")
        return [((1 - eps) * _non_negative(q, "cross_entropy", "target") + eps / classes) * w[c]
                for c, q in enumerate(target)]
    ignore_index = options.get("ignore_index", -100)
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise ValueError(f"cross_entropy: ignore_index must be an int, got {ignore_index!r}")
    if target == ignore_index:
        return None
    _check_target(logits, target)
    a = [eps / classes * w_c for w_c in w]
    a[target] += (1 - eps) * w[target]
    return a


def _cross_entropy_term(ctx, point, options):
    logits, target = point
    a = _class_coefficients(logits, target, options)
    _, d, r = _row_log_probabilities(ctx, logits)
    # -log q_c = log1p(r) - d_c with d_c <= 0: sum_c a_c (-log q_c) is
    # (sum_c a_c) log1p(r) + sum_c a_c (-d_c), two sums of terms >= 0 (no cancellation);
    # the second is exact when every a_c is dyadic (floats, and eps / C for C a power of 2)
    support = [c for c, a_c in enumerate(a) if a_c]
    if all(_dyadic(a[c]) for c in support):
        exact = ctx.zero
        for c in support:
            exact = ctx.fadd(exact, ctx.fmul(exact_mpf(ctx, a[c]), ctx.fneg(d[c], exact=True),
                                             exact=True), exact=True)
        return ExactPlus(exact, exact_mpf(ctx, sum(a[c] for c in support)) * ctx.log1p(r))
    lse = ctx.log1p(r)
    return ctx.fsum(exact_mpf(ctx, a[c]) * (lse - d[c]) for c in support)


def _cross_entropy_option_exact(point, options):
    logits, target = point
    if _contains_nan(point):
        return NAN
    a = _class_coefficients(logits, target, options)
    if a is None:
        return Fraction(0)  # an ignored target adds nothing
    n_pos, finite = _row_shape(logits)
    if n_pos >= 2 or (n_pos == 0 and not finite):
        return NAN
    support = [c for c, a_c in enumerate(a) if a_c]
    if n_pos == 1:  # q is 1 at the +inf entry, 0 elsewhere
        return INF if any(logits[c] != INF for c in support) else Fraction(0)
    if any(logits[c] == -INF for c in support):
        return INF  # a positive coefficient on log 0; a zero one adds nothing (0 log 0 = 0)
    if not support or len(finite) == 1:
        return Fraction(0)
    return None


def _cross_entropy_counted(point, options):
    """torch's mean over class indices divides by the total weight w_t of the targets
    not ignored (by their count without weights); over class probabilities by N:
    https://docs.pytorch.org/docs/stable/generated/torch.nn.CrossEntropyLoss.html
    (torch 2.13's formulas for ``reduction="mean"``; with label smoothing torch divides
    the smoothing term by the same total, aten's cross_entropy_loss_label_smoothing)."""
    logits, target = point
    if isinstance(target, tuple):
        return Fraction(1)
    if target == options.get("ignore_index", -100):
        return Fraction(0)
    weight = options.get("weight")
    return Fraction(1) if weight is None else exact_fraction(weight[target])


def _scalar_weight(options, name):
    value = options.get(name)
    return Fraction(1) if value is None else _non_negative(value, "loss", name)


def _weighted(w, known):
    """``w`` times an exactly known value (IEEE: a zero weight on an infinite loss is NaN)."""
    if known != known:
        return NAN
    if known in (INF, -INF):
        return NAN if w == 0 else known
    return w * known


def _bce_term(ctx, point, options):
    return exact_mpf(ctx, _scalar_weight(options, "weight")) * mp_binary_cross_entropy(ctx, *point)


def _bce_option_exact(point, options):
    w = _scalar_weight(options, "weight")
    known = _binary_cross_entropy_exact(*point)
    if known is None:
        return Fraction(0) if w == 0 else None
    return _weighted(w, known)


def _bce_logits_parts(point, options):
    """(w, a, b) of w (a softplus(-x) + b softplus(x)): a = pos_weight y, b = 1 - y, so
    the loss is -w (pos_weight y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), torch's
    https://docs.pytorch.org/docs/stable/generated/torch.nn.BCEWithLogitsLoss.html"""
    x, y = point
    y = exact_fraction(y)
    return _scalar_weight(options, "weight"), _scalar_weight(options, "pos_weight") * y, 1 - y


def _bce_logits_term(ctx, point, options):
    w, a, b = _bce_logits_parts(point, options)
    x = point[0]
    x_mp = exact_mpf(ctx, x)
    # softplus(x) = max(x, 0) + log1p(exp(-|x|)): the exact product plus one log1p
    linear = b * exact_fraction(x) if x >= 0 else -a * exact_fraction(x)
    rest = exact_mpf(ctx, w * (a + b)) * ctx.log1p(ctx.exp(-abs(x_mp)))
    return ExactPlus(exact_mpf(ctx, w * linear), rest)


def _bce_logits_option_exact(point, options):
    x, y = point
    if not _is_finite(y) or x != x:
        return NAN
    w, a, b = _bce_logits_parts(point, options)
    if x == INF:  # softplus(-x) = 0, softplus(x) = inf
        return _weighted(w, INF) if b else Fraction(0)
    if x == -INF:
        return _weighted(w, INF) if a else Fraction(0)
    if w == 0 or a + b == 0:
        return Fraction(0)
    return None


def _temperature(options, function):
    t = options.get("temperature", 1.0)
    if not (isinstance(t, (int, float)) and _is_finite(t) and t > 0):
        raise ValueError(f"{function}: temperature must be finite and > 0, got {t!r}")
    return t


def _softmax_temperature_term(ctx, point, options):
    _, d, r = _row_log_probabilities(ctx, point[0], _temperature(options, "softmax"))
    one_plus_r = 1 + r
    return tuple(ctx.zero if dj is None else ctx.exp(dj) / one_plus_r for dj in d)


def _log_softmax_temperature_term(ctx, point, options):
    _, d, r = _row_log_probabilities(ctx, point[0], _temperature(options, "log_softmax"))
    lse = ctx.log1p(r)
    return tuple(ctx.ninf if dj is None else dj - lse for dj in d)


def _row_exact_any_temperature(exact):
    # which entries are exactly known (-inf entries, constant rows, one finite entry)
    # depends on the row's shape only, the same for x and x / T
    def known(point, options):
        _temperature(options, "softmax")
        return None if _contains_nan(point) else exact(point[0])
    return known


def _logit_clamped(point, options):
    """p clamped to [eps, 1 - eps] exactly, as ``torch.logit(p, eps)`` documents
    (https://docs.pytorch.org/docs/stable/generated/torch.logit.html); no clamp
    without eps."""
    p = point[0]
    eps = options.get("eps")
    if eps is None:
        return exact_fraction(p)
    e = exact_fraction(eps)
    if not 0 <= e <= Fraction(1, 2):
        raise ValueError(f"logit: eps must be in [0, 1/2], got {eps!r}")
    return min(max(exact_fraction(p), e), 1 - e)


def _logit_term(ctx, point, options):
    return mp_logit(ctx, _logit_clamped(point, options))


def _logit_option_exact(point, options):
    p = point[0]
    if p != p or (options.get("eps") is None and not 0 <= p <= 1):
        return NAN
    if p in (INF, -INF):
        return INF if p > 0 else -INF
    q = _logit_clamped(point, options)
    if q == 0:
        return -INF
    if q == 1:
        return INF
    return Fraction(0) if q == Fraction(1, 2) else None


_REDUCTION = Option("reduction", "one of none, mean, sum (torch's names)",
                    "none: one loss per point; mean and sum over the batch", REDUCTIONS, REDUCTIONS)
_ELEMENT_WEIGHT = Option("weight", "a finite number >= 0, broadcast over the batch",
                         "multiplies each point's loss", edges=(0.0, "tiny", "huge"))

_CROSS_ENTROPY_OPTIONS = (
    Option("target", "index (class indices) or probability (class probabilities of the "
                     "logits' shape, each >= 0)",
           "the input kind of the target; a backend takes probabilities where its binding "
           "declares probability_target", ("index", "probability"), ("index", "probability")),
    Option("weight", "C finite numbers >= 0, one per class",
           "multiplies the loss of each class", edges=(0.0, "tiny", "huge")),
    Option("ignore_index", "an int", "a class-index target equal to it adds 0 and is left out "
           "of the mean's denominator", edges=(-100, "every target")),
    Option("label_smoothing", "a number in [0, 1]",
           "the target becomes (1 - eps) y + eps / C", edges=(0.0, 1.0)),
    _REDUCTION,
)
_BCE_OPTIONS = (_ELEMENT_WEIGHT, _REDUCTION)
_BCE_LOGITS_OPTIONS = (
    _ELEMENT_WEIGHT,
    Option("pos_weight", "a finite number >= 0, broadcast over the batch",
           "multiplies the positive term y log sigmoid(x)", edges=(0.0, "huge")),
    _REDUCTION,
)
_TEMPERATURE_OPTIONS = (
    Option("temperature", "a finite number > 0",
           "softmax(x / T), x / T computed by the backend in its own format as model code "
           "does; the truth is that of the exact x / T", edges=(1e-3, 1e3, "x/T overflows")),
)
_LOGIT_OPTIONS = (
    Option("eps", "a number in [0, 1/2]", "p is clamped to [eps, 1 - eps] before the logit, "
           "as torch.logit(p, eps)", edges=(0.0, 0.5)),
)


_X = (Parameter("x", "real"),)
_P = (Parameter("p", "probability", "a probability in [0, 1]"),)
_ROW = (Parameter("x", "row", "one row; the function acts along the last axis"),)
_NAN_ROW = SpecialValue(((NAN, 0.0),), UNDEFINED, "NaN anywhere makes the row NaN")


def _elementwise_specials(zero, pos_inf, neg_inf):
    return (
        SpecialValue((0.0,), zero),
        SpecialValue((-0.0,), zero),
        SpecialValue((INF,), pos_inf),
        SpecialValue((-INF,), neg_inf),
        SpecialValue((NAN,), UNDEFINED),
    )


def _quantile_specials():
    return (
        SpecialValue((0.0,), -INF),
        SpecialValue((-0.0,), -INF, "-0 is 0"),
        SpecialValue((1.0,), INF),
        SpecialValue((0.5,), Fraction(0)),
        SpecialValue((-1.0,), UNDEFINED, "outside [0, 1]"),
        SpecialValue((2.0,), UNDEFINED, "outside [0, 1]"),
        SpecialValue((INF,), UNDEFINED),
        SpecialValue((-INF,), UNDEFINED),
        SpecialValue((NAN,), UNDEFINED),
    )


_FUNCTIONS = [
    Function(
        name="sigmoid", kind="elementwise", signature="sigmoid(x) -> same shape",
        parameters=_X, vector_output=False,
        description="The logistic function 1 / (1 + exp(-x)).",
        domain="all reals",
        definition=_sigmoid, exact=_limits(Fraction(1, 2), Fraction(1), Fraction(0)),
        derivative=_sigmoid_grad, derivative_doc="sigma(x) * (1 - sigma(x))",
        derivative_as=("sigmoid_grad", 1.0),
        specials=_elementwise_specials(Fraction(1, 2), Fraction(1), Fraction(0)),
        properties=(
            Property("symmetry", "sigmoid(-x) == 1 - sigmoid(x)", 1.0, check="complement_symmetry"),
            Property("range", "0 <= sigmoid(x) <= 1", 0.0, check="range", low=0.0, high=1.0),
            Property("monotone", "x <= y implies sigmoid(x) <= sigmoid(y)", 0.0),
            Property("softmax_link", "sigmoid(z) == softmax([0, z])[1]", 1.0,
                     check="sigmoid_softmax_link"),
            Property("multi_label_shapes",
                     "sigmoid of an (N, C) batch is (N, C), each value the sigmoid of its own "
                     "entry alone (labels independent; rows need not sum to 1)", 1.0,
                     check="sigmoid_multi_label"),
        ),
        budgets=ELEMENTWISE_BUDGETS,
        thresholds=("sigmoid_leaves_half", "sigmoid_rounds_to_one", "sigmoid_normal",
                    "sigmoid_nonzero", "exp_overflow", "exp_neg_overflow"),
        fast=textbook_candidate(
            "sigmoid", "exp(-|x|), 1 + e, one division: <= 2.5 ulp",
            lambda x: x == -np.inf),
    ),
    Function(
        name="sigmoid_grad", kind="elementwise", signature="sigmoid_grad(x) -> same shape",
        parameters=_X, vector_output=False,
        description="The derivative of the sigmoid, sigma(x) (1 - sigma(x)), as a function of x.",
        domain="all reals",
        definition=_sigmoid_grad, exact=_limits(Fraction(1, 4), Fraction(0), Fraction(0)),
        derivative=_d_sigmoid_grad, derivative_doc="sigma'(x) * (1 - 2 sigma(x))",
        derivative_exact=_d_sigmoid_grad_exact,
        specials=_elementwise_specials(Fraction(1, 4), Fraction(0), Fraction(0)),
        properties=(
            Property("bounded", "0 <= sigmoid_grad(x) <= 1/4", 0.0,
                     check="range", low=0.0, high=0.25),
            Property("even", "sigmoid_grad(-x) == sigmoid_grad(x)", 0.0),
            Property("product", "sigmoid_grad(x) == sigmoid(x) * sigmoid(-x)", 2.0,
                     check="sigmoid_grad_product"),
        ),
        budgets=ELEMENTWISE_BUDGETS,
        thresholds=("sigmoid_grad_leaves_quarter", "sigmoid_rounds_to_one",
                    "sigmoid_grad_subnormal", "sigmoid_grad_zero", "exp_overflow"),
        threshold_signs=(1.0, -1.0),  # even: both sides of each location
        fast=textbook_candidate(
            "sigmoid_grad", "exp(-|x|), (1 + e)**2, one division: <= 3.5 ulp",
            np.isinf),
    ),
    Function(
        name="log_sigmoid", kind="elementwise", signature="log_sigmoid(x) -> same shape",
        parameters=_X, vector_output=False,
        description="log(sigmoid(x)) = -log1p(exp(-x)), computed without forming sigmoid(x).",
        domain="all reals",
        definition=_log_sigmoid, exact=_limits(None, Fraction(0), -INF),
        derivative=lambda ctx, x: _sigmoid(ctx, -exact_mpf(ctx, x)), derivative_doc="sigma(-x)",
        derivative_as=("sigmoid", -1.0),
        specials=_elementwise_specials(ORACLE, Fraction(0), -INF),
        properties=(
            Property("softplus_link", "log_sigmoid(x) == -softplus(-x)", 0.0,
                     check="log_sigmoid_softplus_link"),
            Property("non_positive", "log_sigmoid(x) <= 0", 0.0, check="range", high=0.0),
            Property("monotone", "x <= y implies log_sigmoid(x) <= log_sigmoid(y)", 0.0),
        ),
        budgets=ELEMENTWISE_BUDGETS,
        thresholds=("log_sigmoid_leaves_x", "log_sigmoid_subnormal", "log_sigmoid_zero",
                    "exp_neg_overflow"),
        fast=textbook_candidate(
            "log_sigmoid", "-(max(-x, 0) + log1p(exp(-|x|))), two non-negative terms: <= 3 ulp",
            lambda x: x == np.inf),
    ),
    Function(
        name="softplus", kind="elementwise", signature="softplus(x) -> same shape",
        parameters=_X, vector_output=False,
        description="log(1 + exp(x)), with beta = 1 and no linear-region threshold.",
        domain="all reals",
        definition=_softplus, exact=_limits(None, INF, Fraction(0)),
        derivative=_sigmoid, derivative_doc="sigma(x)",
        derivative_as=("sigmoid", 1.0),
        specials=_elementwise_specials(ORACLE, INF, Fraction(0)),
        properties=(
            Property("difference", "softplus(x) - softplus(-x) == x", 1.0,
                     check="softplus_difference"),
            Property("lower_bound", "softplus(x) >= max(x, 0)", 0.0, check="softplus_lower_bound"),
            Property("monotone", "x <= y implies softplus(x) <= softplus(y)", 0.0),
        ),
        budgets=ELEMENTWISE_BUDGETS,
        thresholds=("softplus_equals_x", "softplus_normal", "softplus_nonzero", "exp_overflow"),
        fast=textbook_candidate(
            "softplus", "max(x, 0) + log1p(exp(-|x|)), two non-negative terms: <= 3 ulp",
            lambda x: x == -np.inf),
    ),
    Function(
        name="logit", kind="elementwise", signature="logit(p) -> same shape",
        parameters=_P, vector_output=False,
        description="The inverse of the sigmoid, log(p / (1 - p)).",
        domain="p in [0, 1]; -inf at 0, +inf at 1, NaN outside",
        definition=mp_logit, exact=_probability_to_quantile_exact(Fraction(0)),
        derivative=_d_logit, derivative_doc="1 / (p (1 - p))",
        derivative_exact=_d_logit_exact,
        specials=_quantile_specials(),
        properties=(
            Property("inverse", "logit(sigmoid(x)) recovers x where sigmoid(x) is representable", 2.0,
                     check="logit_inverse"),
            Property("antisymmetry", "logit(1 - p) == -logit(p) where 1 - p is exact", 0.0),
            Property("monotone", "p <= q implies logit(p) <= logit(q)", 0.0),
        ),
        budgets=ELEMENTWISE_BUDGETS,
        options=_LOGIT_OPTIONS,
        with_options=OptionDefinition(_logit_term, _logit_option_exact),
        thresholds=("probability_near_zero", "probability_near_half", "probability_near_one"),
        fast=textbook_candidate(
            "logit", "log p - log1p(-p) below 1/4 (no cancellation), log1p((2p - 1) / (1 - p)) "
                     "above (2p - 1 and 1 - p exact): <= 3.5 ulp",
            lambda p: p == 0.5),
    ),
    Function(
        name="hard_sigmoid", kind="elementwise", signature="hard_sigmoid(x) -> same shape",
        parameters=_X, vector_output=False,
        description="relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1) (PyTorch, JAX, Keras 3).",
        domain="all reals",
        definition=_hard_sigmoid, exact=_hard_sigmoid_exact,
        derivative=_d_hard_sigmoid,
        derivative_exact=_d_hard_sigmoid_exact,
        derivative_doc="1/6 on (-3, 3), 0 elsewhere (0 at the kinks, as PyTorch)",
        specials=_elementwise_specials(Fraction(1, 2), Fraction(1), Fraction(0)) + (
            SpecialValue((3.0,), Fraction(1)),
            SpecialValue((-3.0,), Fraction(0)),
        ),
        properties=(
            Property("range", "0 <= hard_sigmoid(x) <= 1", 0.0, check="range", low=0.0, high=1.0),
            Property("monotone", "x <= y implies hard_sigmoid(x) <= hard_sigmoid(y)", 0.0),
            Property("symmetry", "hard_sigmoid(-x) == 1 - hard_sigmoid(x)", 1.0,
                     check="complement_symmetry"),
        ),
        budgets=EXACTISH_BUDGETS,
        thresholds=("hard_sigmoid_kinks",),
        fast=textbook_candidate(
            "hard_sigmoid", "x + 3 and one division by 6, two roundings: <= 2 ulp",
            lambda x: x <= -3.0, exact_at=hard_sigmoid_exact_at),
    ),
    Function(
        name="ndtr", kind="elementwise", signature="ndtr(x) -> same shape",
        parameters=_X, vector_output=False,
        description="The standard normal CDF, erfc(-x / sqrt 2) / 2.",
        domain="all reals",
        definition=_ndtr, exact=_limits(Fraction(1, 2), Fraction(1), Fraction(0)),
        derivative=_d_ndtr, derivative_doc="exp(-x^2/2) / sqrt(2 pi)",
        specials=_elementwise_specials(Fraction(1, 2), Fraction(1), Fraction(0)),
        properties=(
            Property("symmetry", "ndtr(-x) == 1 - ndtr(x)", 1.0, check="complement_symmetry"),
            Property("range", "0 <= ndtr(x) <= 1", 0.0, check="range", low=0.0, high=1.0),
            Property("monotone", "x <= y implies ndtr(x) <= ndtr(y)", 0.0),
        ),
        budgets=SPECIAL_FUNCTION_BUDGETS,
        thresholds=("ndtr_leaves_half", "ndtr_rounds_to_one", "ndtr_normal", "ndtr_nonzero"),
        fast=numpy_candidate(
            "ndtr", "Cody's erfcx (< 0.3 ulp) by compensated Horner, exp(-x**2/2) of a "
                    "double-double argument, erf's series near 0: <= 3 ulp",
            lambda x: x == -np.inf),
    ),
    Function(
        name="probit", kind="elementwise", signature="probit(p) -> same shape",
        parameters=_P, vector_output=False,
        description="The standard normal quantile (ndtri), the inverse of ndtr.",
        domain="p in [0, 1]; -inf at 0, +inf at 1, NaN outside",
        definition=_probit, exact=_probability_to_quantile_exact(Fraction(0)),
        derivative=_d_probit, derivative_doc="sqrt(2 pi) exp(probit(p)^2 / 2)",
        specials=_quantile_specials(),
        properties=(
            Property("inverse", "ndtr(probit(p)) recovers p", 2.0, check="probit_inverse"),
            Property("antisymmetry", "probit(1 - p) == -probit(p) where 1 - p is exact", 0.0),
            Property("monotone", "p <= q implies probit(p) <= probit(q)", 0.0),
        ),
        budgets=SPECIAL_FUNCTION_BUDGETS,
        thresholds=("probability_near_zero", "probability_near_half", "probability_near_one"),
        fast=numpy_candidate(
            "probit", "Acklam's start refined by two Halley steps on the ndtr above, residual "
                      "formed without cancellation: <= 4 ulp",
            lambda p: p == 0.5),
    ),
    Function(
        name="softmax", kind="axis", signature="softmax(x) along the last axis -> same shape",
        parameters=_ROW, vector_output=True,
        description="exp(x_i) / sum_j exp(x_j) along the last axis.",
        domain="rows of reals; -inf entries get 0; one +inf entry gets 1 (the limit); "
               "two +inf or all -inf: undefined",
        definition=_softmax, exact=_softmax_exact,
        derivative=_vjp_softmax, derivative_doc="VJP: s * (v - <v, s>)",
        derivative_exact=_vjp_softmax_exact,
        specials=(
            SpecialValue(((0.0, 0.0),), (Fraction(1, 2), Fraction(1, 2))),
            SpecialValue(((1.0, 1.0, 1.0, 1.0),), (Fraction(1, 4),) * 4),
            SpecialValue(((5.0,),), (Fraction(1),)),
            SpecialValue(((-INF, 0.0),), (Fraction(0), Fraction(1))),
            SpecialValue(((-INF, -INF),), UNDEFINED, "0/0"),
            SpecialValue(((INF, 0.0),), (Fraction(1), Fraction(0)), "the limit as x_0 -> inf"),
            SpecialValue(((INF, -INF),), (Fraction(1), Fraction(0))),
            SpecialValue(((INF, INF),), UNDEFINED, "inf/inf"),
            _NAN_ROW,
        ),
        properties=(
            Property("sums_to_one", "sum_j softmax(x)_j == 1", 4.0),
            Property("range", "0 <= softmax(x)_j <= 1", 0.0, check="range", low=0.0, high=1.0),
            Property("shift_invariance", "softmax(x + c) == softmax(x) for exact shifts c", 2.0,
                     check="row_shift_invariance"),
            Property("order", "x_i <= x_j implies softmax(x)_i <= softmax(x)_j", 0.0),
            Property("sigmoid_link", "softmax([0, z])[1] == sigmoid(z)", 1.0,
                     check="softmax_sigmoid_link"),
            Property("temperature_smoothing",
                     "the entropy of softmax(x / T) does not decrease as T grows", 0.0),
            Property("multi_label_shapes",
                     "softmax of an (N, C) batch is (N, C), each row the softmax of that row "
                     "alone (normalised along the class axis only; sums_to_one checks the sum)",
                     1.0, check="softmax_multi_class"),
        ),
        budgets=ROW_BUDGETS,
        options=_TEMPERATURE_OPTIONS,
        with_options=OptionDefinition(_softmax_temperature_term,
                                      _row_exact_any_temperature(_softmax_exact)),
        thresholds=ROW_GAPS,
    ),
    Function(
        name="log_softmax", kind="axis", signature="log_softmax(x) along the last axis -> same shape",
        parameters=_ROW, vector_output=True,
        description="x_i - logsumexp(x) along the last axis.",
        domain="rows of reals; -inf entries give -inf; one +inf entry gives 0 there and "
               "-inf elsewhere; two +inf or all -inf: undefined",
        definition=_log_softmax, exact=_log_softmax_exact,
        derivative=_vjp_log_softmax, derivative_doc="VJP: v - softmax(x) * sum(v)",
        derivative_exact=_vjp_log_softmax_exact,
        specials=(
            SpecialValue(((0.0, 0.0),), ORACLE, "-log 2 each"),
            SpecialValue(((5.0,),), (Fraction(0),)),
            SpecialValue(((-INF, 0.0),), (-INF, Fraction(0))),
            SpecialValue(((-INF, -INF),), UNDEFINED),
            SpecialValue(((INF, 0.0),), (Fraction(0), -INF), "the limit as x_0 -> inf"),
            SpecialValue(((INF, INF),), UNDEFINED),
            _NAN_ROW,
        ),
        properties=(
            Property("non_positive", "log_softmax(x)_j <= 0", 0.0, check="range", high=0.0),
            Property("normalized", "sum_j exp(log_softmax(x)_j) == 1", 4.0),
            Property("shift_invariance", "log_softmax(x + c) == log_softmax(x) for exact shifts c", 2.0,
                     check="row_shift_invariance"),
            Property("softmax_link", "log_softmax(x) == log(softmax(x)) where softmax is normal", 2.0,
                     check="log_softmax_link"),
        ),
        budgets=ROW_LOG_BUDGETS,
        options=_TEMPERATURE_OPTIONS,
        with_options=OptionDefinition(_log_softmax_temperature_term,
                                      _row_exact_any_temperature(_log_softmax_exact)),
        thresholds=ROW_GAPS,
    ),
    Function(
        name="logsumexp", kind="axis", signature="logsumexp(x) reduces the last axis",
        parameters=_ROW, vector_output=False,
        description="log sum_j exp(x_j) over the last axis.",
        domain="rows of reals; all -inf gives -inf, any +inf gives +inf",
        definition=_logsumexp, exact=_logsumexp_exact,
        derivative=_vjp_logsumexp, derivative_doc="VJP: v * softmax(x)",
        derivative_exact=_vjp_logsumexp_exact,
        specials=(
            SpecialValue(((0.0, 0.0),), ORACLE, "log 2"),
            SpecialValue(((5.0,),), Fraction(5)),
            SpecialValue(((-INF, 0.0),), Fraction(0)),
            SpecialValue(((-INF, -INF),), -INF),
            SpecialValue(((INF, 0.0),), INF),
            SpecialValue(((INF, INF),), INF),
            SpecialValue(((INF, -INF),), INF),
            _NAN_ROW,
        ),
        properties=(
            Property("bounds", "max(x) <= logsumexp(x) <= max(x) + log(n)", 1.0,
                     check="logsumexp_bounds"),
            Property("shift_equivariance", "logsumexp(x + c) == logsumexp(x) + c for exact shifts c", 2.0),
            Property("monotone", "increasing any entry does not decrease logsumexp", 0.0,
                     check="logsumexp_monotone"),
        ),
        budgets=ROW_LOG_BUDGETS,
        thresholds=ROW_GAPS,
    ),
    Function(
        name="binary_cross_entropy", kind="loss",
        signature="binary_cross_entropy(p, y) elementwise, reduction none",
        parameters=(Parameter("p", "probability", "the predicted probability"),
                    Parameter("y", "label", "the target, usually 0 or 1")),
        vector_output=False,
        description="-(y log p + (1 - y) log(1 - p)), with 0 log 0 = 0 for a zero weight.",
        domain="p in [0, 1], y finite (NaN otherwise); infinite where a positive weight meets log 0",
        definition=mp_binary_cross_entropy, exact=_binary_cross_entropy_exact,
        derivative=_d_binary_cross_entropy, derivative_doc="d/dp: (p - y) / (p (1 - p))",
        derivative_exact=_d_binary_cross_entropy_exact,
        specials=(
            SpecialValue((0.0, 0.0), Fraction(0)),
            SpecialValue((1.0, 1.0), Fraction(0)),
            SpecialValue((0.0, 1.0), INF, "PyTorch clamps log at -100 (a convention)"),
            SpecialValue((1.0, 0.0), INF),
            SpecialValue((0.0, 0.5), INF),
            SpecialValue((1.0, 0.5), INF),
            SpecialValue((0.5, 0.0), ORACLE, "log 2"),
            SpecialValue((-1.0, 0.0), UNDEFINED, "p outside [0, 1]"),
            SpecialValue((2.0, 1.0), UNDEFINED, "p outside [0, 1]"),
            SpecialValue((NAN, 0.0), UNDEFINED),
            SpecialValue((0.5, NAN), UNDEFINED),
            SpecialValue((0.5, INF), UNDEFINED),
        ),
        properties=(
            Property("non_negative", "binary_cross_entropy(p, y) >= 0 for y in [0, 1]", 0.0,
                     check="range", low=0.0, labels_in_unit=True),
            Property("symmetry", "bce(p, y) == bce(1 - p, 1 - y) where 1 - p is exact", 1.0,
                     check="bce_symmetry"),
            Property("logits_link", "bce(sigmoid(x), y) agrees with bce_with_logits(x, y) "
                                    "where sigmoid(x) is exact enough", 4.0, check="bce_logits_link"),
        ),
        budgets=LOSS_BUDGETS,
        options=_BCE_OPTIONS,
        with_options=OptionDefinition(_bce_term, _bce_option_exact),
        thresholds=("probability_near_zero", "probability_near_one", "torch_log_clamp"),
    ),
    Function(
        name="binary_cross_entropy_with_logits", kind="loss",
        signature="binary_cross_entropy_with_logits(x, y) elementwise, reduction none",
        parameters=(Parameter("x", "real", "the logit"),
                    Parameter("y", "label", "the target, usually 0 or 1")),
        vector_output=False,
        description="softplus(x) - x y = -(y log sigmoid(x) + (1 - y) log sigmoid(-x)).",
        domain="x real (±inf as limits), y finite (NaN otherwise)",
        definition=_binary_cross_entropy_with_logits, exact=_bce_with_logits_exact,
        derivative=_d_bce_with_logits, derivative_doc="d/dx: sigmoid(x) - y",
        derivative_exact=_d_bce_with_logits_exact,
        specials=(
            SpecialValue((INF, 1.0), Fraction(0)),
            SpecialValue((INF, 0.0), INF),
            SpecialValue((INF, 0.5), INF),
            SpecialValue((-INF, 0.0), Fraction(0)),
            SpecialValue((-INF, 1.0), INF),
            SpecialValue((0.0, 0.0), ORACLE, "log 2"),
            SpecialValue((-0.0, 1.0), ORACLE, "log 2"),
            SpecialValue((NAN, 0.0), UNDEFINED),
            SpecialValue((0.0, NAN), UNDEFINED),
            SpecialValue((1.0, INF), UNDEFINED),
        ),
        properties=(
            Property("non_negative", "bce_with_logits(x, y) >= 0 for y in [0, 1]", 0.0,
                     check="range", low=0.0, labels_in_unit=True),
            Property("symmetry", "bce_with_logits(-x, 1 - y) == bce_with_logits(x, y)", 1.0,
                     check="bce_logits_symmetry"),
            Property("softplus_link", "bce_with_logits(x, 0) == softplus(x)", 1.0,
                     check="bce_logits_softplus_link"),
        ),
        budgets=LOSS_BUDGETS,
        options=_BCE_LOGITS_OPTIONS,
        with_options=OptionDefinition(_bce_logits_term, _bce_logits_option_exact),
        thresholds=("softplus_equals_x", "softplus_normal", "softplus_nonzero", "exp_overflow"),
    ),
    Function(
        name="cross_entropy", kind="loss",
        signature="cross_entropy(logits (N, C), target (N,) int) per row, reduction none",
        parameters=(Parameter("logits", "row", "one row of logits"),
                    Parameter("target", "class_index", "the index of the true class")),
        vector_output=False,
        description="logsumexp(logits) - logits[target] = -log_softmax(logits)[target].",
        domain="rows of reals and a class index in range (ValueError otherwise); "
               "+inf at a -inf target; undefined rows as log_softmax",
        definition=_cross_entropy, exact=_cross_entropy_exact,
        derivative=_d_cross_entropy, derivative_doc="d/dlogits: softmax(logits) - onehot(target)",
        derivative_exact=_d_cross_entropy_exact,
        specials=(
            SpecialValue(((0.0, 0.0), 0), ORACLE, "log 2"),
            SpecialValue(((5.0,), 0), Fraction(0)),
            SpecialValue(((-INF, 0.0), 1), Fraction(0)),
            SpecialValue(((-INF, 0.0), 0), INF),
            SpecialValue(((INF, 0.0), 0), Fraction(0)),
            SpecialValue(((INF, 0.0), 1), INF),
            SpecialValue(((INF, INF), 0), UNDEFINED),
            SpecialValue(((-INF, -INF), 0), UNDEFINED),
            SpecialValue(((NAN, 0.0), 1), UNDEFINED),
        ),
        properties=(
            Property("non_negative", "cross_entropy(x, t) >= 0", 0.0, check="range", low=0.0),
            Property("log_softmax_link", "cross_entropy(x, t) == -log_softmax(x)[t]", 1.0,
                     check="cross_entropy_link"),
            Property("shift_invariance", "cross_entropy(x + c, t) == cross_entropy(x, t) for exact shifts c", 2.0,
                     check="loss_shift_invariance"),
        ),
        budgets=LOSS_BUDGETS,
        options=_CROSS_ENTROPY_OPTIONS,
        with_options=OptionDefinition(_cross_entropy_term, _cross_entropy_option_exact,
                                      _cross_entropy_counted),
        thresholds=ROW_GAPS,
    ),
    Function(
        name="distillation_loss", kind="loss",
        signature="distillation_loss(student (N, C), teacher (N, C), temperature) per row",
        parameters=(Parameter("student", "row", "student logits"),
                    Parameter("teacher", "row", "teacher logits"),
                    Parameter("temperature", "temperature", "T > 0")),
        vector_output=False,
        description="T^2 sum_j p_t,j (log p_t,j - log p_s,j) with p = softmax(logits / T): "
                    "the Hinton et al. (2015) soft-target loss, KL(p_t || p_s) scaled by T^2.",
        domain="rows of equal length; T finite and > 0 (NaN otherwise); +inf where the "
               "teacher has mass the student lacks",
        definition=_distillation_loss, exact=_distillation_exact,
        derivative=_d_distillation, derivative_doc="d/dstudent: T (p_s - p_t)",
        derivative_exact=_d_distillation_exact,
        specials=(
            SpecialValue(((0.0, 0.0), (0.0, 0.0), 1.0), Fraction(0)),
            SpecialValue(((1.0, 2.0), (1.0, 2.0), 2.0), Fraction(0)),
            SpecialValue(((0.0, 1.0), (1.0, 2.0), 1.0), Fraction(0), "rows differ by a constant"),
            SpecialValue(((0.0, -INF), (0.0, -INF), 1.0), Fraction(0)),
            SpecialValue(((-INF, 0.0), (0.0, 0.0), 1.0), INF),
            SpecialValue(((0.0, 0.0), (-INF, 0.0), 1.0), ORACLE, "log 2"),
            SpecialValue(((INF, 0.0), (0.0, 0.0), 1.0), INF),
            SpecialValue(((INF, 0.0), (INF, 0.0), 1.0), Fraction(0)),
            SpecialValue(((0.0, 0.0), (0.0, 0.0), 0.0), UNDEFINED, "T must be > 0"),
            SpecialValue(((0.0, 0.0), (0.0, 0.0), INF), UNDEFINED, "T must be finite"),
            SpecialValue(((NAN, 0.0), (0.0, 0.0), 1.0), UNDEFINED),
        ),
        properties=(
            Property("non_negative", "distillation_loss >= 0", 0.0, check="range", low=0.0),
            Property("zero_at_teacher", "distillation_loss(t, t, T) == 0", 0.0),
            Property("shift_invariance", "adding a constant to a row does not change the loss", 2.0,
                     check="loss_shift_invariance"),
        ),
        budgets=LOSS_BUDGETS,
        thresholds=ROW_GAPS,
    ),
]

FUNCTIONS = {f.name: f for f in _FUNCTIONS}
#: The canonical names, a live view of :data:`FUNCTIONS`: a record added there (a test's
#: toy function, say) is known everywhere at once.
NAMES = FUNCTIONS.keys()
#: ``{name: FastTruth}`` of the functions a sweep can judge (those with a fast truth)
FAST_TRUTHS = {f.name: f.fast for f in _FUNCTIONS if f.fast is not None}


def fast_truth_of(function):
    """The :class:`~refact.conformance.truth.fast.FastTruth` of a catalog function;
    KeyError names the ones that have one."""
    try:
        return FAST_TRUTHS[getattr(function, "name", function)]
    except KeyError:
        raise KeyError(f"no fast candidate truth for {function!r}; sweeps cover "
                       f"{', '.join(FAST_TRUTHS)}") from None


def get_function(function):
    """A :class:`Function` from itself or its canonical name; ValueError otherwise."""
    if isinstance(function, Function):
        return function
    try:
        return FUNCTIONS[getattr(function, "name", function)]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown function {function!r}; expected one of {', '.join(NAMES)}"
        ) from None

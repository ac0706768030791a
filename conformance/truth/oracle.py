"""The oracle: correctly rounded truth from mpmath, or an honest "undecided".

``truth(function, point, fmt)`` evaluates the catalog definition with mpmath at
increasing working precision (``max(64, p + 48)`` bits, then doubling) until two
successive evaluations settle the rounding: with ``v`` the higher-precision value and
``err = |v - v_lower| + |v| * 2**(8 - P_lower)`` an estimate of the lower one's error,
every number in ``[v - err, v + err]`` must round to the same format value (same
sign of zero included). That is Ziv's strategy with the previous evaluation as the
error witness. Past the precision cap (8192 bits by default) the value is
**undecided**: a distinct status, never a guess. Values known exactly (special
inputs, ``sigmoid(0) = 1/2``, ``logit(1/2) = 0``, softmax of a constant row,
``hard_sigmoid`` everywhere, ...) come from the catalog's exact hooks and are rounded
directly; this is why an exact zero never sends the escalation to the cap. An mpmath
evaluation that is exactly 0 is never trusted, since mpmath does not underflow: a 0
can only come from cancellation. A definition may return a value as ``exact + rest``
(:class:`refact.conformance.truth.catalog.ExactPlus`); then the error estimate applies to
``rest`` alone, which settles a rounding midpoint plus 1e-4343 at the first rung.

Row results (softmax, log_softmax) are decided value by value; a point is undecided
if any of its values is.

Where answers come from, first hit wins:

1. the golden vectors shipped in ``data/golden.json.gz`` (````refact golden
   --write````), for the default case set;
2. the disk cache: sqlite3 at ``$REFACT_CACHE_DIR/oracle.sqlite3`` (default
   ``~/.cache/refact``; set ``REFACT_CACHE_DIR`` to an empty string to disable it),
   keyed by oracle version, function, format and the inputs' bit patterns, safe to
   share between threads and processes;
3. mpmath (with gmpy2 underneath when installed: ``mpmath.libmp.BACKEND``).

Each answer carries the correctly rounded value(s) as Python floats, and the exact
value(s) as mpmath numbers kept to ``p + 32`` bits or more (always enough that they
round to the decided value) for measuring errors. A fresh answer and a cached one are
identical.

>>> t = truth("probit", (1e-300,), "float64")
>>> t.rounded, t.status
(-37.0470962993612, 'ok')
>>> float(truth("sigmoid", (-10000.0,), "float64").exact) == 0.0
True
"""

import functools
import json
import math
import random
import threading
from dataclasses import dataclass
from fractions import Fraction

from refact.conformance.truth import store
from refact.conformance.truth.catalog import ExactPlus, exact_mpf, get_function
from refact.conformance.numbers.formats import (
    bits_hex, exact_hex, from_bits_hex, get_format, is_representable, parse_exact_hex_dyadic,
    round_to_format, same_value, ulp_exponent,
)

__all__ = [
    "ORACLE_VERSION", "DEFAULT_MAX_PRECISION", "Truth", "truth", "truth_many", "evaluate",
    "derivative_truth",
    "normalize_point", "point_key", "truth_record", "exact_digits", "precision_ladder", "mp_context",
    "condition_number", "OptionTruth", "option_truth",
]

#: Bump when a definition or the decision rule changes: it keys the cache and golden data.
ORACLE_VERSION = 1
#: Working precision cap in bits; past it a value is undecided.
DEFAULT_MAX_PRECISION = 8192
#: Bits of slack granted to an evaluation at P bits (its error is taken as 2**(8-P) relative).
GUARD_BITS = 8
#: Extra bits beyond the format's precision kept in the stored exact value.
STORED_EXTRA_BITS = 32


@dataclass(frozen=True)
class Truth:
    """The oracle's answer at one point.

    ``rounded``: the correctly rounded value in ``format`` (a float; a tuple for row
    outputs), ``None`` where undecided. ``exact``: the mpmath value(s) to measure
    errors against (for an undecided value, the best evaluation: do not measure with it).
    ``status``: ``"ok"`` or ``"undecided"``; ``undecided``: indices of the undecided
    values. ``precision``: the working precision in bits of the deciding evaluation
    (0 when every value was known exactly). ``source``: ``"exact"``, ``"computed"``,
    ``"cache"`` or ``"golden"``. ``max_precision``: the cap the answer was decided under.
    """

    function: str
    format: str
    args: tuple
    rounded: object
    exact: object
    status: str
    undecided: tuple
    precision: int
    source: str
    max_precision: int = DEFAULT_MAX_PRECISION

    @property
    def decided(self):
        return self.status == "ok"

    @property
    def values(self):
        """``rounded`` as a tuple, whatever the output shape."""
        return self.rounded if isinstance(self.rounded, tuple) else (self.rounded,)

    @property
    def exacts(self):
        """``exact`` as a tuple, whatever the output shape."""
        return self.exact if isinstance(self.exact, tuple) else (self.exact,)

    @functools.cached_property
    def float_pairs(self):
        """Per value, the exact truth as two float64 (:func:`errors.float_pair`, None where
        it cannot be), for judging many results at once; kept with the truth, which
        every backend of a run shares."""
        from refact.conformance.numbers.ruler import float_pair

        return tuple(None if i in self.undecided else float_pair(e)
                     for i, e in enumerate(self.exacts))

    @property
    def elements(self):
        """``(rounded, exact)`` per output value, ``(None, None)`` where undecided:
        what :func:`refact.conformance.numbers.ruler.classify` and ``ulp_error`` take."""
        return tuple(
            (None, None) if i in self.undecided else (r, e)
            for i, (r, e) in enumerate(zip(self.values, self.exacts))
        )


# --- mpmath working contexts ----------------------------------------------------------

_local = threading.local()


def mp_context():
    """This thread's private mpmath context: the oracle sets its precision freely
    without touching ``mpmath.mp`` or another thread's evaluation."""
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        from mpmath.ctx_mp import MPContext

        ctx = _local.ctx = MPContext()
    return ctx


def _public_mpf(raw):
    """A raw mpf tuple as a ``mpmath.mpf`` of the global context, unrounded."""
    import mpmath

    return mpmath.mp.make_mpf(raw)


def _raw(value):
    """The raw mpf tuple of an exact value: mpf as is, floats/dyadic Fractions exactly,
    other Fractions to 4096 bits (only ``_stored_exact`` sees them, and it re-checks)."""
    from mpmath.libmp import finf, fnan, fninf, from_man_exp, from_rational, round_nearest

    raw = getattr(value, "_mpf_", None)
    if raw is not None:
        return raw
    if isinstance(value, float):
        if value != value:
            return fnan
        if math.isinf(value):
            return finf if value > 0 else fninf
        num, den = value.as_integer_ratio()
        return from_man_exp(num, 1 - den.bit_length())
    num, den = value.numerator, value.denominator
    if den & (den - 1) == 0:
        return from_man_exp(num, 1 - den.bit_length())
    return from_rational(num, den, 4096, round_nearest)


def _mpf_from_hex(text):
    from mpmath.libmp import from_man_exp

    parsed = parse_exact_hex_dyadic(text)
    if isinstance(parsed, float):
        return _public_mpf(_raw(parsed))
    return _public_mpf(from_man_exp(*parsed))


def _stored_exact(value, rounded, fmt):
    """``value`` trimmed to ``p + 32`` bits, or to more when the trimmed number would
    no longer round to ``rounded`` (a truth within 2**-32 ulp of a rounding boundary)."""
    from mpmath.libmp import from_man_exp, round_nearest

    raw = _raw(value)
    sign, man, exp, bc = raw
    if not man:
        return _public_mpf(raw)
    signed = -man if sign else man
    bits = fmt.precision + STORED_EXTRA_BITS
    while bits < bc:
        trimmed = from_man_exp(signed, exp, bits, round_nearest)
        if rounded is None or same_value(round_to_format(_public_mpf(trimmed), fmt), rounded):
            return _public_mpf(trimmed)
        bits *= 2
    return _public_mpf(raw)


# --- the decision -------------------------------------------------------------------


def precision_ladder(fmt, max_precision=DEFAULT_MAX_PRECISION):
    """The working precisions tried, in bits: ``max(64, p + 48)``, doubling, ending
    at the cap. A cap below the start leaves one rung, which cannot decide anything."""
    fmt = get_format(fmt)
    start = max(64, fmt.precision + 48)
    if max_precision <= start:
        return [int(max_precision)]
    ladder = []
    p = start
    while p < max_precision:
        ladder.append(p)
        p *= 2
    ladder.append(int(max_precision))
    return ladder


def _settled(lower, higher, lower_prec, fmt, ctx):
    """The format value two successive evaluations settle on, or None if not yet.

    An evaluation is an mpf or an :class:`ExactPlus`; for the latter the error
    estimate applies to its ``rest`` alone, since its ``exact`` part has none.
    """
    exact, higher = _split(higher)
    lower_exact, lower = _split(lower)
    if lower_exact != exact:  # the definition chose another form at the other precision
        higher, lower = _combined_at(ctx, exact, higher), _combined_at(ctx, lower_exact, lower)
        exact = None
    if ctx.isnan(higher) or ctx.isnan(lower):
        return None
    if ctx.isinf(higher) or ctx.isinf(lower):
        return round_to_format(higher, fmt) if higher == lower and not exact else None
    if not higher:
        return None  # mpmath never underflows: a 0 is cancellation, not a value
    err = ctx.fadd(
        abs(ctx.fsub(higher, lower, prec=64, rounding="u")),
        ctx.ldexp(abs(higher), GUARD_BITS - lower_prec),
        prec=64, rounding="u",
    )
    work = ctx.prec + 64
    down = ctx.fsub(higher, err, prec=work, rounding="f")
    up = ctx.fadd(higher, err, prec=work, rounding="c")
    rounded = round_to_format(_add_exact(ctx, exact, higher, fmt, _DECISION_GAP), fmt)
    for bound in (down, up):
        if not same_value(round_to_format(_add_exact(ctx, exact, bound, fmt, _DECISION_GAP), fmt), rounded):
            return None
    return rounded


#: ``exact + rest`` rounds like ``exact + sign(rest) * 2**(e - gap)`` when
#: ``|rest| < 2**(e - gap)``, for any gap >= 1, where ``e = min(u - 1, lsb)``: u is the
#: ulp exponent at ``exact`` and lsb the exponent of its lowest set bit. The rounding
#: boundaries (format values and midpoints) are multiples of 2**(u - 1) near ``exact``,
#: so none lies strictly between ``exact`` and a point that much closer to it.
_DECISION_GAP = 8
_STORAGE_GAP = 64


def _split(value):
    if isinstance(value, ExactPlus):
        return (value.exact if value.exact else None), value.rest
    return None, value


def _add_exact(ctx, exact, rest, fmt, gap):
    """``exact + rest`` computed exactly, with a ``rest`` too small to matter replaced
    by a power of two of its sign that rounds the same (see above), which keeps the
    sum small even when ``rest`` is 10**-4343."""
    if exact is None:
        return rest
    if not rest:
        return exact
    lowest_bit = exact._mpf_[2]  # mpf mantissas are odd: this is the exponent of the last 1
    floor = ctx.ldexp(ctx.mpf(1), min(ulp_exponent(exact, fmt) - 1, lowest_bit) - gap)
    if abs(rest) < floor:
        rest = floor if rest > 0 else -floor
    return ctx.fadd(exact, rest, exact=True)


def _combined_at(ctx, exact, rest):
    return rest if exact is None else ctx.fadd(exact, rest)


def _combined(value, fmt):
    """An evaluation as one mpf (ExactPlus summed, its tiny rest clamped far below
    the format's spacing: within 2**-64 ulp of the true sum and rounding like it)."""
    exact, rest = _split(value)
    if exact is None:
        return rest
    return _add_exact(mp_context(), exact, rest, fmt, _STORAGE_GAP)


def _escalate(known, evaluate_at, fmt, max_precision):
    """The one escalation rule, for values and derivatives alike.

    ``known``: per output value its exact value, or None where ``evaluate_at(ctx)`` (a
    list of mpf / :class:`ExactPlus`, one per value, at ``ctx.prec``) must decide it.
    Climbs :func:`precision_ladder` until :func:`_settled` decides every value. Returns
    ``(rounded, exact, pending, precision)``: ``pending`` lists the values still
    undecided at the cap (their ``rounded`` is None)."""
    n = len(known)
    rounded = [None] * n
    exact = [None] * n
    pending = []
    for i, value in enumerate(known):
        if value is not None:
            rounded[i] = round_to_format(value, fmt)
            exact[i] = value
        else:
            pending.append(i)
    used = 0
    if pending:
        ctx = mp_context()
        previous = None
        previous_prec = None
        for prec in precision_ladder(fmt, max_precision):
            ctx.prec = prec
            values = evaluate_at(ctx)
            used = prec
            still = []
            for i in pending:
                exact[i] = _combined(values[i], fmt)
                decided = None
                if previous is not None:
                    decided = _settled(previous[i], values[i], previous_prec, fmt, ctx)
                if decided is None:
                    still.append(i)
                else:
                    rounded[i] = decided
            pending = still
            if not pending:
                break
            previous, previous_prec = values, prec
    return rounded, exact, pending, used


def _compute(spec, args, fmt, max_precision):
    """Decide one point from scratch; return a record (see ``_encode``)."""
    known = spec.exact_values(args) or [None] * spec.output_size(args)
    rounded, exact, pending, used = _escalate(
        known, lambda ctx: spec.evaluate(ctx, args), fmt, max_precision)
    return {
        "status": "undecided" if pending else "ok",
        "rounded": rounded,
        "exact": [_stored_exact(e, r, fmt) for e, r in zip(exact, rounded)],
        "precision": used,
        "cap": int(max_precision),
        "undecided": pending,
    }


def derivative_truth(function, point, fmt, cotangent, *, max_precision=DEFAULT_MAX_PRECISION):
    """``((rounded, exact), ...)``, one pair per gradient element of ``function`` at the
    finite in-domain ``point`` (the VJP with ``cotangent`` for a row function), decided
    by the same rule as every value (:func:`_escalate`), exact derivative values from
    the catalog's ``derivative_exact`` hook first; ``(None, None)`` where undecided.
    Remembered per process: every backend of a run asks for the same points."""
    spec = get_function(function)
    cotangent = tuple(cotangent) if isinstance(cotangent, (list, tuple)) else cotangent
    return _derivative_truth(spec.name, tuple(point), get_format(fmt).name, cotangent,
                             int(max_precision))


@functools.lru_cache(maxsize=65536)
def _derivative_truth(function, point, format_name, cotangent, max_precision):
    spec = get_function(function)
    fmt = get_format(format_name)
    known = spec.exact_derivative(point, cotangent)
    if known is None:
        known = [None] * len(spec.evaluate_derivative(mp_context(), point, cotangent))
    rounded, exact, pending, _ = _escalate(
        known, lambda ctx: spec.evaluate_derivative(ctx, point, cotangent), fmt, max_precision)
    return tuple((None, None) if i in pending else (rounded[i], exact[i])
                 for i in range(len(known)))


def evaluate(function, point, precision):
    """One raw mpmath evaluation of the catalog definition at ``precision`` bits (no
    rounding, no exact hooks, no escalation): a ``mpmath.mpf``, or a tuple for rows."""
    spec = get_function(function)
    args = normalize_point(spec, point, None)
    ctx = mp_context()
    ctx.prec = int(precision)
    values = []
    for v in spec.evaluate(ctx, args):
        exact, rest = _split(v)
        values.append(_public_mpf((rest if exact is None else exact + rest)._mpf_))
    return tuple(values) if spec.vector_output else values[0]


# --- points and keys ------------------------------------------------------------------


def normalize_point(function, point, fmt):
    """Check a point against the function's parameters and return it as a tuple
    (rows as tuples of floats). Every float must be a value of ``fmt`` (skip the check
    with ``fmt=None``). A lone argument may be passed bare: ``0.5`` for ``(0.5,)``,
    ``[1, 2]`` for ``((1.0, 2.0),)`` when the function takes one row."""
    spec = get_function(function)
    fmt = None if fmt is None else get_format(fmt)
    if spec.arity == 1:
        is_row = spec.parameters[0].role == "row"
        if not isinstance(point, (tuple, list)) or (
            is_row and point and not isinstance(point[0], (tuple, list))
        ):
            point = (point,)
    if not isinstance(point, (tuple, list)) or len(point) != spec.arity:
        names = ", ".join(p.name for p in spec.parameters)
        raise ValueError(f"{spec.name} takes a point ({names}), got {point!r}")
    out = []
    for parameter, value in zip(spec.parameters, point):
        where = f"{spec.name}: {parameter.name}"
        if parameter.role == "row":
            if not isinstance(value, (tuple, list)) or not value:
                raise ValueError(f"{where} must be a non-empty row, got {value!r}")
            out.append(tuple(_member(v, fmt, where) for v in value))
        elif parameter.role == "class_index":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{where} must be an int, got {value!r}")
            out.append(int(value))
        else:
            out.append(_member(value, fmt, where))
    return tuple(out)


def _member(value, fmt, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a float, got {type(value).__name__} {value!r}")
    x = float(value)
    if fmt is not None and not is_representable(x, fmt):
        raise ValueError(f"{where} = {value!r} ({x.hex()}) is not a {fmt.name} value")
    return x


def point_key(function, point, fmt):
    """The canonical text of a point for caches and golden files: floats as their bit
    patterns in ``fmt``, class indices as ints, e.g. ``'[["0x3c00","0x4000"],1]'``."""
    spec = get_function(function)
    fmt = get_format(fmt)
    args = normalize_point(spec, point, fmt)
    return _key(args, fmt)


def _key(args, fmt):
    def enc(a):
        if isinstance(a, tuple):
            return [enc(x) for x in a]
        if isinstance(a, int):
            return a
        return bits_hex(a, fmt)

    return json.dumps([enc(a) for a in args], separators=(",", ":"))


# --- records: one codec for the cache, golden files and worker processes --------------


def _encode(record, fmt):
    return json.dumps({
        "s": record["status"],
        "r": [None if r is None else bits_hex(r, fmt) for r in record["rounded"]],
        "e": [exact_hex(e) for e in record["exact"]],
        "p": record["precision"],
        "c": record["cap"],
        "u": list(record["undecided"]),
    }, separators=(",", ":"))


def _decode(text, fmt):
    obj = json.loads(text) if isinstance(text, str) else text
    return {
        "status": obj["s"],
        "rounded": [None if r is None else from_bits_hex(r, fmt) for r in obj["r"]],
        "exact": [_mpf_from_hex(e) for e in obj["e"]],
        "precision": obj["p"],
        "cap": obj["c"],
        "undecided": obj.get("u", []),
    }


def _usable(obj, max_precision):
    """A stored answer stands for this call if this call's cap would reproduce it:
    decided at or below the cap, or undecided with at least this cap."""
    if obj["s"] == "ok":
        return obj["p"] <= max_precision
    return obj["c"] >= max_precision


def _truth(spec, args, fmt, record, source):
    rounded = tuple(record["rounded"])
    exact = tuple(record["exact"])
    if not record["precision"] and source == "computed":
        source = "exact"
    if not spec.vector_output:
        rounded, exact = rounded[0], exact[0]
    return Truth(spec.name, fmt.name, args, rounded, exact, record["status"],
                 tuple(record["undecided"]), record["precision"], source, record["cap"])


def truth_record(t):
    """The JSON-ready record of a :class:`Truth`, as the disk cache and the golden
    files store it (rounded values as bit patterns, exact values as exact hex)."""
    fmt = get_format(t.format)
    return json.loads(_encode({
        "status": t.status, "rounded": list(t.values), "exact": list(t.exacts),
        "precision": t.precision, "cap": t.max_precision, "undecided": list(t.undecided),
    }, fmt))


# --- the disk cache -------------------------------------------------------------------

#: Share of the truths taken from the disk cache that each call re-derives: the cache's
#: checksums catch damage, not a wrong record written with a valid checksum.
CACHE_AUDIT_RATE = 1 / 32
#: Seed of that random choice; None draws afresh each call.
CACHE_AUDIT_SEED = None


def _check_record(text, fmt):
    """Raise unless ``text`` is a record :func:`_decode` and :func:`_usable` can read."""
    obj = json.loads(text)
    record = _decode(obj, fmt)
    n = len(record["rounded"])
    if (obj["s"] not in ("ok", "undecided") or not n or len(record["exact"]) != n
            or not all(type(obj[f]) is int for f in ("p", "c"))
            or not set(record["undecided"]) <= set(range(n))):
        raise ValueError("not an oracle record")


def _cached_sample_holds(spec, fmt, stored, args_of, max_precision):
    """Re-derive a random sample of the truths in ``stored`` that came from the disk
    cache; on a wrong one, clear the cache and return False. Only records a fresh
    evaluation at this cap must reproduce are compared: climbing the same rungs (same
    cap, or decided below both caps), it gives the same text but for the cap."""
    rng = random.Random(CACHE_AUDIT_SEED)
    for k in sorted(k for k, (_, source) in stored.items() if source == "cache"):
        obj = stored[k][0]
        same_rungs = obj["c"] == max_precision or (obj["s"] == "ok" and obj["p"] < min(obj["c"], max_precision))
        if not same_rungs or rng.random() >= CACHE_AUDIT_RATE:
            continue
        fresh = json.loads(_compute_encoded(spec.name, args_of[k], fmt.name, max_precision))
        if {**fresh, "c": None} != {"u": [], **obj, "c": None}:
            store.cache_clear(ORACLE_VERSION, f"it held a wrong truth for {spec.name} at {k} in {fmt.name}")
            return False
    return True


# --- public entry points ----------------------------------------------------------------


def truth(function, point, fmt, *, max_precision=DEFAULT_MAX_PRECISION, cache=True, golden=True):
    """The oracle's :class:`Truth` for ``function`` at ``point`` in format ``fmt``.

    ``point`` is a tuple of the function's parameters (see ``catalog``); every float in
    it must be a value of ``fmt``. ``cache``/``golden`` switch the disk cache and the
    golden vectors off for this call (``cache=False`` neither reads nor writes).
    """
    return truth_many(function, [point], fmt, max_precision=max_precision,
                      cache=cache, golden=golden)[0]


def truth_many(function, points, fmt, *, max_precision=DEFAULT_MAX_PRECISION, cache=True,
               golden=True, workers=1):
    """:func:`truth` for many points of one function and format, in order: one golden
    lookup, one batched cache query and one cache transaction. ``workers > 1`` decides
    the points missing from both in that many processes."""
    spec = get_function(function)
    fmt = get_format(fmt)
    max_precision = int(max_precision)
    argss = [normalize_point(spec, p, fmt) for p in points]
    keys = [_key(a, fmt) for a in argss]
    stored = {}
    if golden:
        section = store.golden_records(spec.name, fmt.name, ORACLE_VERSION)
        for k in keys:
            obj = section.get(k)
            if obj is not None and _usable(obj, max_precision):
                stored[k] = (obj, "golden")
    db_key = {k: f"{spec.name}|{fmt.name}|{k}" for k in keys if k not in stored}
    if cache and db_key:
        hits = store.cache_get(list(db_key.values()), ORACLE_VERSION, check=lambda t: _check_record(t, fmt))
        for k, dk in db_key.items():
            text = hits.get(dk)
            if text is not None:
                obj = json.loads(text)
                if _usable(obj, max_precision):
                    stored[k] = (obj, "cache")
        if not _cached_sample_holds(spec, fmt, stored, dict(zip(keys, argss)), max_precision):
            stored = {k: v for k, v in stored.items() if v[1] != "cache"}  # all recomputed
    missing = list(dict.fromkeys(k for k in keys if k not in stored))
    args_of = dict(zip(keys, argss))
    computed = {}
    if missing:
        jobs = [(spec.name, args_of[k], fmt.name, max_precision) for k in missing]
        if workers and workers > 1 and len(jobs) > 1:
            import multiprocessing

            with multiprocessing.get_context().Pool(workers) as pool:
                texts = pool.starmap(_compute_encoded, jobs, chunksize=max(1, len(jobs) // (8 * workers)))
        else:
            texts = [_compute_encoded(*job) for job in jobs]
        computed = dict(zip(missing, texts))
        if cache:
            store.cache_put([(f"{spec.name}|{fmt.name}|{k}", t) for k, t in computed.items()], ORACLE_VERSION)
    out = []
    for args, k in zip(argss, keys):
        if k in computed:
            record, source = _decode(computed[k], fmt), "computed"
        else:
            obj, source = stored[k]
            record = _decode(obj, fmt)
        out.append(_truth(spec, args, fmt, record, source))
    return out


def _compute_encoded(function, args, format_name, max_precision):
    fmt = get_format(format_name)
    return _encode(_compute(get_function(function), args, fmt, max_precision), fmt)


def exact_digits(function, point, digits, max_precision=DEFAULT_MAX_PRECISION):
    """The exact value(s) at a point as decimal strings of ``digits`` significant
    digits, for display: evaluated at doubling precisions until two agree on every
    printed digit (the stored exact values keep only p + 32 bits)."""
    import mpmath

    spec = get_function(function)
    args = normalize_point(spec, point, None)
    known = spec.exact_values(args) or [None] * spec.output_size(args)
    ctx = mp_context()
    prec = max(64, int(digits * 3.33) + 32)
    cap = max(int(max_precision), DEFAULT_MAX_PRECISION)  # display may look past the oracle's cap
    previous = None
    while True:
        ctx.prec = prec
        shown = []
        values = None
        for i, k in enumerate(known):
            if k is None:
                if values is None:
                    values = spec.evaluate(ctx, args)
                exact, rest = _split(values[i])
                v = rest if exact is None else ctx.fadd(exact, rest)
            elif isinstance(k, float):
                v = ctx.convert(k)
            else:
                v = ctx.mpf(k.numerator) / k.denominator
            shown.append(mpmath.nstr(_public_mpf(v._mpf_), digits, min_fixed=-6, max_fixed=12))
        if shown == previous or prec >= cap:
            return shown
        previous = shown
        prec = min(2 * prec, cap)


def condition_number(function, point, precision=128):
    """``|x f'(x) / f(x)|`` in the first argument, from the catalog's definition and
    derivative at ``precision`` bits, for functions with a scalar first argument and a
    scalar output (the elementwise functions and the binary cross-entropies).

    It tells an error an implementation could avoid from one inherent in the input:
    relative error in x is amplified by this factor (logit and probit near 1 reach
    ~1e15 in float64), so a large ULP error there is no proof of a bad implementation.
    inf where f(x) = 0 and x f'(x) != 0; NaN where f is not finite.
    """
    spec = get_function(function)
    if spec.vector_output or spec.parameters[0].role not in ("real", "probability"):
        raise ValueError(f"condition_number: {spec.name} does not take a scalar first argument")
    args = normalize_point(spec, point, None)
    x = args[0]
    known = spec.exact_values(args)
    value = None if known is None else known[0]
    if value is not None and (value != value or math.isinf(value)):
        return math.nan
    ctx = mp_context()
    ctx.prec = precision
    if value is None:
        value = spec.definition(ctx, *args)
        if isinstance(value, ExactPlus):
            value = ctx.fadd(value.exact, value.rest)
    if x == 0:
        return 0.0
    slope = spec.derivative(ctx, *args)
    if value == 0:
        return 0.0 if slope == 0 else math.inf
    if isinstance(value, Fraction):
        value = ctx.mpf(value.numerator) / value.denominator
    return float(abs(ctx.convert(x) * slope / value))


# --- calls with options ----------------------------------------------------------------


@dataclass(frozen=True)
class OptionTruth:
    """The oracle's answer for one call with options: ``points`` (a batch) and
    ``options`` (``reduction`` included). ``values``: one tuple per output of the call,
    each of ``(rounded, exact)`` pairs (``(None, None)`` where undecided): per point
    with ``reduction="none"`` (a row's values for softmax), one for ``mean``/``sum``."""

    function: str
    format: str
    points: tuple
    options: tuple
    values: tuple
    undecided: int
    precision: int

    @property
    def decided(self):
        return self.undecided == 0


def _portable(value):
    """An exact value as the public mpmath number (the thread's private context's numbers
    do not pickle into the run's processes); Fractions and floats as they are."""
    return _public_mpf(value._mpf_) if hasattr(value, "_mpf_") else value


def _option_point(spec, point, fmt):
    """A point of a call with options as a tuple; a cross_entropy target may be a row of
    class probabilities as well as an index (the ``target`` option's two kinds)."""
    if spec.name == "cross_entropy" and isinstance(point[1], (tuple, list)):
        where = "cross_entropy: target"
        return (normalize_point(spec, (point[0], 0), fmt)[0],
                tuple(_member(v, fmt, where) for v in point[1]))
    return normalize_point(spec, point, fmt)


def option_truth(function, points, options, fmt, *, max_precision=DEFAULT_MAX_PRECISION):
    """The truth of ``function`` called on the batch ``points`` with ``options`` (the
    catalog's :class:`~refact.conformance.truth.catalog.Option` names), every value
    decided by the one escalation rule. Each point's value with the options applied
    comes from the catalog (``with_options``); ``reduction`` ("none", "mean", "sum") is
    applied here, exactly: the sum of the exact terms, divided for the mean by the
    catalog's count of each point (1, or torch's weight of its target, 0 for an ignored
    one). A mean over nothing (every target ignored) is 0/0: NaN is due, which is what
    torch documents returning. ValueError names an unknown option or a bad value."""
    spec = get_function(function)
    fmt = get_format(fmt)
    definition = spec.with_options
    if definition is None:
        raise ValueError(f"{spec.name} declares no options")
    given = dict(options)
    unknown = sorted(set(given) - {o.name for o in spec.options})
    if unknown:
        raise ValueError(f"{spec.name} has no option {unknown[0]!r}; declared: "
                         f"{', '.join(o.name for o in spec.options)}")
    reduction = given.pop("reduction", "none")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{spec.name}: reduction must be none, mean or sum, got {reduction!r}")
    kind = given.pop("target", None)  # the input kind shows in the points themselves
    if not points:
        raise ValueError(f"{spec.name}: a call with options needs at least one point")
    points = tuple(_option_point(spec, p, fmt) for p in points)
    if kind is not None and kind != ("probability" if isinstance(points[0][1], tuple) else "index"):
        raise ValueError(f"{spec.name}: target={kind!r} does not match the points' targets")
    known = [definition.exact(p, given) for p in points]
    key = tuple(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in options.items()))

    def terms(ctx, which):
        return [definition.term(ctx, points[i], given) for i in which]

    if reduction == "none":
        sizes = [spec.output_size(p) for p in points]
        flat, owner = [], []
        for i, (k, n) in enumerate(zip(known, sizes)):
            values = [None] * n if k is None else (list(k) if spec.vector_output else [k])
            if len(values) != n:
                raise AssertionError(f"{spec.name}: option exact hook gave {len(values)} values for {n}")
            flat.extend(values)
            owner.extend([i] * n)
        open_points = [i for i, k in enumerate(known) if k is None or (spec.vector_output and None in k)]

        def evaluate_at(ctx):
            out = [None] * len(flat)
            computed = dict(zip(open_points, terms(ctx, open_points)))
            position = 0
            for i, n in enumerate(sizes):
                if i in computed:
                    value = computed[i]
                    out[position:position + n] = list(value) if spec.vector_output else [value]
                position += n
            return out

        rounded, exact, pending, used = _escalate(flat, evaluate_at, fmt, max_precision)
        pairs = [(None, None) if j in pending else (rounded[j], _portable(exact[j]))
                 for j in range(len(flat))]
        values, position = [], 0
        for n in sizes:
            values.append(tuple(pairs[position:position + n]))
            position += n
        return OptionTruth(spec.name, fmt.name, points, key, tuple(values), len(pending), used)

    counted = [definition.counted(p, given) if definition.counted else Fraction(1) for p in points]
    denominator = sum(counted) if reduction == "mean" else Fraction(1)
    if any(k != k for k in known if k is not None) or denominator == 0:
        total = math.nan  # NaN in a term, or the mean of nothing
    elif any(k in (math.inf, -math.inf) for k in known if k is not None):
        total = math.inf  # every loss term is >= 0: an infinite one makes the total infinite
    elif all(k is not None for k in known):
        total = sum(known) / denominator
    else:
        total = None
    open_points = [i for i, k in enumerate(known) if k is None]

    def reduced_at(ctx):
        # terms >= 0: their exact parts summed exactly, the rest at the working precision
        exact_sum = exact_mpf(ctx, sum(k for k in known if k is not None))
        rest = ctx.zero
        for value in terms(ctx, open_points):
            if isinstance(value, ExactPlus):
                exact_sum = ctx.fadd(exact_sum, value.exact, exact=True)
                value = value.rest
            rest += value
        if reduction == "sum":
            return [ExactPlus(exact_sum, rest)]
        return [(exact_sum + rest) / exact_mpf(ctx, denominator)]

    rounded, exact, pending, used = _escalate([total], reduced_at, fmt, max_precision)
    pair = (None, None) if pending else (rounded[0], _portable(exact[0]))
    return OptionTruth(spec.name, fmt.name, points, key, ((pair,),), len(pending), used)

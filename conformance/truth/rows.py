"""Truths of whole row sets at once: the row functions and the losses, vectorised.

:func:`row_truths` gives, for a :class:`RowSet` (the case stage builds them), the
correctly rounded truth of every output value (one per entry of softmax and
log_softmax, one per row of logsumexp and the losses), flattened group by group and row
by row, as a :class:`~refact.conformance.truth.arrays.PointTruths` whose ``bits`` are
the flat output indices and whose ``x`` is the input entry each value belongs to (the
entry itself for softmax and log_softmax, the row's maximum for logsumexp, the target's
logit for cross_entropy, the first argument of the binary cross-entropies, the
student's maximum for distillation_loss). Three steps, as for the elementwise arrays:

1. a *candidate* in the platform's long double (x87 80-bit extended here: 64
   significant bits; ``u = 2**-63``, one unit in its last place, bounds each operation)
   with a *radius* per value computed from that row's own magnitudes (formulas below):
   the interval ``candidate ± radius`` holds the truth;
2. :func:`decide` rounds the candidate to the format where the interval holds no
   rounding boundary (no midpoint, nor the overflow threshold) and no power of two (so
   the spacing the error is measured in is known);
3. the mpmath oracle (:func:`~refact.conformance.truth.oracle.truth_many`, one call per
   row) decides the rows with an undecided value, and a seeded random sample of rows;
   where a sampled row's candidate was decided, a different rounding or an exact value
   outside the radius is a *disagreement*: a bug of refact, kept and named (the engine
   makes the record an error), and the oracle's value is used.

The candidates are the textbook formulas in long double, written afresh (not
numpy_impl's: the numpy backend is never judged by its own code). With ``m`` a row's
largest entry, ``k`` its position, ``d_j = x_j - m`` and ``S = sum_{j != k} exp(d_j)``:

===============================  =========================================================
logsumexp                        ``m + log1p(S)``; radius ``dL + u |lse|``
log_softmax_j                    ``d_j - L``; radius ``dd_j + dL + u |log_softmax_j|``
softmax_j                        ``exp(d_j) / (1 + S)``; radius
                                 ``softmax_j (dd_j + 3 u + dS / (1 + S))`` (0 for a
                                 constant row of 2**j entries: exactly 2**-j)
cross_entropy                    ``L - d_t``; radius ``dd_t + dL + u |loss|``
binary_cross_entropy             ``-(y log p + (1 - y) log1p(-p))`` (``log(1 - p)`` of the
                                 exact ``1 - p`` above 1/2); two terms of one sign:
                                 radius ``4 u`` times their magnitudes' sum
binary_cross_entropy_with_logits ``max(x, 0) - x y + log1p(exp(-|x|))`` as the sum of
                                 two non-negative terms; radius ``4 u`` times their sum
distillation_loss                ``T^2 log E_t[exp(w)]`` in the centred form (below)
===============================  =========================================================

where ``dd_j`` is the rounding error of ``d_j``, known exactly (TwoSum; 0 for every
narrow format and most float64 rows), ``L = log1p(S)``, ``dS = sum_j exp(d_j) (dd_j + u)
+ ceil(log2 C) u S + 2**-16000`` (each ``exp`` within one ulp of exp at the rounded
``d_j``, the sum within ``ceil(log2 C) u S`` (:func:`pairwise_sum`), and an absolute
term for exponentials below long double's range) and ``dL = dS / (1 + S) + u L``. Every radius is then doubled and given a relative floor
of ``4 u`` (:data:`SAFETY`); the tests measure the candidates against mpmath on random
and adversarial rows and hold the errors below the radii. The cancellation of
``m + L`` (``m < 0 < L``) and of ``d_j - L`` is what the absolute terms ``dL`` and
``dd_j`` cover (``m`` is exact): where they swamp the result the value is left to the
oracle. Float64 rows leave the most to it: 64 bits decide a float64 rounding 11 bits
out, so about one value in 60 of softmax (whose every entry must be decided) is
undecided; the truths are computed once and kept on disk.

distillation_loss: with ``a = teacher / T``, ``b = student / T``, ``p`` the teacher's
softmax, ``v = b - a`` and ``w = v - E_p[v]``, ``KL = log1p(E_p[exp(w) - 1 - w])``, a
sum of non-negative terms (the textbook ``sum p (log p - log q)`` cancels to O(w^2)
from terms of O(w) when the rows are close), ``exp(w) - 1 - w`` by its series below
|w| = 1/8. Rows with a -inf entry are left to the oracle.

:func:`cached_row_truths` keeps the set and its truths on disk (``.npy`` files named by a
digest of everything that shapes them, memory-mapped by every backend's process).
"""

import hashlib
import inspect
import io
import json
import math
import os
from dataclasses import dataclass

import numpy as np

from refact.conformance.numbers.formats import get_format
from refact.conformance.truth import store
from refact.conformance.truth.arrays import FIELDS, PointTruths, oracle_units
from refact.conformance.truth.catalog import get_function
from refact.conformance.truth.oracle import ORACLE_VERSION, truth_many

__all__ = [
    "U", "SAFETY", "ROWS_VERSION", "RowGroup", "RowSet", "Candidate", "candidate", "decide", "row_truths",
    "cached_row_truths", "load_row_truths", "row_points", "flat_layout", "SAMPLE_ROWS", "ld_to_mpf",
]

_LD = np.longdouble
#: One unit in the last place of long double at 1 (2**-63 for x87 extended).
U = float(np.finfo(_LD).eps)
#: Factor every radius is multiplied by, and the relative floor in units of U.
SAFETY = 2.0
_FLOOR = 4.0
#: Absolute error allowed for exponentials below long double's normal range.
_TINY = _LD(2.0) ** -16000
#: Bump when a candidate, a radius or the set changes: it keys the files on disk.
ROWS_VERSION = 3
#: Rows the oracle is asked whatever the candidates say, per set.
SAMPLE_ROWS = 64
#: At most this many entries of a sampled row (the oracle's cost grows with the length).
SAMPLE_MAX_LENGTH = 1000
DISAGREEMENTS_KEPT = 20


@dataclass
class RowGroup:
    """Rows of one length, as the arguments of one call in canonical order: ``(x,)``
    (N, C) for the row functions; ``(logits (N, C), target (N,) int64)``;
    ``(student (N, C), teacher (N, C), temperature)``; ``(p (N,), y (N,))``.
    ``family``: the index in :data:`refact.conformance.cases.rows.FAMILIES` of each row (N,)."""

    arguments: tuple
    family: np.ndarray

    @property
    def rows(self):
        return len(self.family)

    @property
    def length(self):
        first = self.arguments[0]
        return first.shape[1] if first.ndim == 2 else 1

    @property
    def temperature(self):
        return self.arguments[2] if len(self.arguments) == 3 else None


@dataclass
class RowSet:
    """The dense rows of ``function`` in ``fmt``: a list of :class:`RowGroup`."""

    function: str
    format: str
    groups: list

    @property
    def rows(self):
        return sum(g.rows for g in self.groups)

    def describe(self):
        """``"16,384 rows in lengths 2 x 6,144, ..."`` for a record's section."""
        parts = []
        for g in self.groups:
            at = "" if g.temperature is None else f" at T={g.temperature:g}"
            parts.append(f"{g.length} x {g.rows:,}{at}")
        return f"{self.rows:,} rows in lengths {', '.join(parts)}"


class Candidate:
    """The long double candidate of every output value of a group: ``value``, ``radius``
    (LD arrays), ``exact_zero`` (the truth is exactly 0: softmax of a -inf entry, the
    loss of a row with one finite entry), ``open`` (values left to the oracle) and
    ``side`` (optional): the sign of truth - value where the value is an exact part
    whose positive rest long double lost (``d_j - L`` rounding to ``d_j``): a midpoint
    of the format there is decided by that sign, as the oracle's ExactPlus is."""

    def __init__(self, value, radius, exact_zero, open_, side=None):
        self.value, self.radius, self.exact_zero, self.open = value, radius, exact_zero, open_
        self.side = side


# --- candidates ------------------------------------------------------------------------


def _levels(c):
    """Additions on the way from one term to a sum of ``c`` by :func:`pairwise_sum`."""
    return max(1, math.ceil(math.log2(max(c, 1))))


def pairwise_sum(terms):
    """Sums along the last axis by halving (pad, add neighbours): each term meets
    ``ceil(log2 C)`` roundings, so the error of a sum of non-negative terms is at most
    ``ceil(log2 C) u`` of it (a sequential sum's bound is ``(C - 1) u``, which for
    1000-wide rows would leave float64 undecided)."""
    while terms.shape[-1] > 1:
        if terms.shape[-1] % 2:
            terms = np.concatenate([terms, np.zeros(terms.shape[:-1] + (1,), dtype=terms.dtype)], axis=-1)
        terms = terms[..., 0::2] + terms[..., 1::2]
    return terms[..., 0]


def _row_parts(x):
    """The shared pieces of rows ``x`` (float64 (N, C)) in long double, as a dict:
    ``m``, ``k`` (a largest entry, its index), ``d = x - m`` and ``dd`` its rounding
    error exactly (TwoSum: 0 wherever the difference fits in 64 bits, always for the
    narrow formats), ``e = exp(d)`` (0 at ``k``), ``S``, ``dS``, ``L = log1p(S)``,
    ``dL``; ``ok`` rows have no NaN, no +inf and a finite entry; ``single``: exactly one
    entry is not -inf (S = 0 exactly); ``equal``: every entry that is not -inf is ``m``
    (S = count - 1 exactly)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        ok = ~np.isnan(x).any(axis=1) & ~np.isposinf(x).any(axis=1) & np.isfinite(x).any(axis=1)
        safe = np.where(ok[:, None], x, 0.0)
        k = np.argmax(safe, axis=1)
        rows = np.arange(len(x))
        m = safe[rows, k].astype(_LD)
        a, b = safe.astype(_LD), -m[:, None]
        d = a + b
        # TwoSum (Knuth): the exact error of the rounded difference
        bb = d - a
        dd = np.abs((a - (d - bb)) + (b - bb))
        dd = np.where(np.isfinite(dd), dd, 0)
        e = np.exp(d)
        e[rows, k] = 0
        S = pairwise_sum(e)
        alive = np.isfinite(safe).sum(axis=1)
        single = alive == 1
        equal = ((safe == safe[rows, k][:, None]) | np.isneginf(safe)).all(axis=1)
        # exponentials below long double's range: the truth of S is positive, not 0
        S = np.where(~single & (S == 0), _TINY, S)
        # each exp within one ulp (U relative) of exp at the rounded d, which is within
        # dd of the exact d: e (dd + U) per term, then the additions of the sum
        dS = pairwise_sum(e * (dd * (1 + dd) + _LD(U))) + _LD(U) * _levels(x.shape[1]) * S \
            + np.where(single, 0, _TINY)
        L = np.log1p(S)
        dL = dS / (1 + S) + _LD(U) * L
    return {"m": m, "k": k, "d": d, "dd": dd, "e": e, "S": S, "dS": dS, "L": L, "dL": dL, "ok": ok,
            "single": single, "equal": equal, "alive": alive}


def _whole(ok, shape):
    return ~ok[:, None] | np.zeros(shape, dtype=bool)


def _softmax(group):
    r = _row_parts(group.arguments[0])
    d, S, k = r["d"], r["S"], r["k"]
    n, c = d.shape
    with np.errstate(all="ignore"):
        ek = r["e"].copy()
        ek[np.arange(n), k] = 1
        value = ek / (1 + S)[:, None]
        # _TINY: an exp below long double's range is 0 here, its truth not
        radius = value * (r["dd"] * (1 + r["dd"]) + 3 * _LD(U) + (r["dS"] / (1 + S))[:, None]) \
            + np.where(np.isneginf(d), 0, _TINY)
        # a constant row of 2**j entries: exactly 2**-j, a power of two the interval
        # must not straddle
        count = r["alive"]
        exact = r["equal"] & ((count & (count - 1)) == 0)
        radius = np.where(exact[:, None], 0, radius)
        # 1 / (1 + S) rounded to 1 where S > 0: the truth is just below 1
        side = np.where((value == 1) & (S[:, None] > 0), -1, 0)
    exact_zero = np.isneginf(group.arguments[0])
    return Candidate(value, radius, exact_zero, _whole(r["ok"], (n, c)), side)


def _log_softmax(group):
    r = _row_parts(group.arguments[0])
    d, L = r["d"], r["L"]
    n, c = d.shape
    with np.errstate(all="ignore"):
        value = d - L[:, None]
        radius = r["dd"] + r["dL"][:, None] + _LD(U) * np.where(np.isfinite(value), np.abs(value), 0)
        side = np.where((value == d) & (r["dd"] == 0) & (L[:, None] > 0), -1, 0)
    exact_zero = r["single"][:, None] & (d == 0)
    return Candidate(value, radius, exact_zero, _whole(r["ok"], (n, c)), side)


def _logsumexp(group):
    r = _row_parts(group.arguments[0])
    with np.errstate(all="ignore"):
        value = r["m"] + r["L"]
        radius = r["dL"] + _LD(U) * np.abs(value)
        side = np.where((value == r["m"]) & (r["L"] > 0), 1, 0)  # m + L rounded to m
    return Candidate(value, radius, r["single"] & (r["m"] == 0), ~r["ok"], side)


def _cross_entropy(group):
    x, target = group.arguments
    r = _row_parts(x)
    rows = np.arange(len(target))
    with np.errstate(all="ignore"):
        dt = r["d"][rows, target]
        value = r["L"] - dt
        radius = r["dL"] + r["dd"][rows, target] + _LD(U) * np.where(np.isfinite(value), np.abs(value), 0)
        side = np.where((value == -dt) & (r["dd"][rows, target] == 0) & (r["L"] > 0), 1, 0)
    return Candidate(value, radius, r["single"] & (dt == 0), ~r["ok"], side)


def _binary_cross_entropy(group):
    p, y = (np.asarray(a, dtype=np.float64) for a in group.arguments)
    with np.errstate(all="ignore"):
        pl, yl = p.astype(_LD), y.astype(_LD)
        # log(1 - p): log1p(-p) below 1/2, the log of the exact 1 - p above
        log_1mp = np.where(p <= 0.5, np.log1p(-pl), np.log(1 - pl))
        first = np.where(y != 0, -yl * np.log(pl), 0)
        second = np.where(y != 1, -(1 - yl) * log_1mp, 0)
        value = first + second
        radius = 4 * _LD(U) * (np.abs(first) + np.abs(second))
    open_ = ~((p > 0) & (p < 1) & (y >= 0) & (y <= 1))  # the exact hooks' points, soft labels out of range
    return Candidate(value, radius, np.zeros(len(p), dtype=bool), open_)


def _binary_cross_entropy_with_logits(group):
    x, y = (np.asarray(a, dtype=np.float64) for a in group.arguments)
    with np.errstate(all="ignore"):
        xl, yl = x.astype(_LD), y.astype(_LD)
        # (1 - y) x for x >= 0, -y x below: both >= 0 for y in [0, 1]
        linear = np.where(x >= 0, (1 - yl) * xl, -yl * xl)
        soft = np.log1p(np.exp(-np.abs(xl)))
        value = linear + soft
        # _TINY: exp(-|x|) below long double's range is 0 here
        radius = 4 * _LD(U) * (np.abs(linear) + soft) + _TINY
    open_ = ~(np.isfinite(x) & (y >= 0) & (y <= 1))
    return Candidate(value, radius, np.zeros(len(x), dtype=bool), open_)


def _series_exp_minus_one_minus(w):
    """exp(w) - 1 - w for |w| <= 1/8: the Taylor series w^2/2! + w^3/3! + ..., 22
    terms (the next is below 2**-64 of the first), by Horner."""
    total = np.ones_like(w)
    for n in range(23, 2, -1):
        total = 1 + w * total / n
    return w * w / 2 * total


def _distillation_loss(group):
    student, teacher, temperature = group.arguments
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    T = _LD(float(temperature))
    n, c = s.shape
    with np.errstate(all="ignore"):
        ok = np.isfinite(s).all(axis=1) & np.isfinite(t).all(axis=1) & np.isfinite(float(temperature)) \
            & (float(temperature) > 0)
        sl, tl = np.where(ok[:, None], s, 0).astype(_LD), np.where(ok[:, None], t, 0).astype(_LD)
        top = np.argmax(tl, axis=1)
        rows = np.arange(n)
        a_gap = (tl - tl[rows, top][:, None]) / T          # <= 0, error u |a_gap| (2 ops)
        weights = np.exp(a_gap)
        Z = pairwise_sum(weights)
        log_z = np.log(Z)
        log_p = a_gap - log_z[:, None]
        p = weights / Z[:, None]
        rho_p = _LD(U) * (2 * np.abs(a_gap) + _levels(c) + 4)        # relative error of each p_j
        v = (sl - tl) / T                                   # error u |v| (2 ops)
        mean = pairwise_sum(p * v)
        d_mean = ((p * np.abs(v)) * (rho_p + 3 * _LD(U))).sum(axis=1) + _LD(U) * _levels(c) * (p * np.abs(v)).sum(axis=1)
        w = v - mean[:, None]
        dw = 2 * _LD(U) * np.abs(v) + d_mean[:, None] + _LD(U) * np.abs(w)
        small = np.abs(w) <= 0.125
        phi_small = _series_exp_minus_one_minus(np.where(small, w, 0))
        # p (e^w - 1 - w) = exp(log p + w) - p (1 + w) where |w| > 1/8 (no overflow of e^w)
        big_term = np.exp(log_p + np.where(small, 0, w)) - p * (1 + np.where(small, 0, w))
        term = np.where(small, p * phi_small, big_term)
        # second order in dw too: where w itself is lost to rounding (a mean of 1e311-sized
        # v, whose ulp dwarfs the spread), phi's first derivative, 0 at w = 0, bounds nothing
        d_term = np.where(
            small,
            p * (np.abs(phi_small) * (rho_p + 4 * _LD(U)) + np.abs(np.expm1(np.where(small, w, 0))) * dw
                 + dw * dw * np.exp(np.abs(np.where(small, w, 0)) + dw)),
            np.exp(log_p + np.where(small, 0, w)) * (_LD(U) * (np.abs(log_p) + np.abs(w) + 4)
                                                       + np.expm1(dw) + rho_p)
            + p * (1 + np.abs(w)) * (rho_p + 2 * _LD(U)) + p * dw)
        E = pairwise_sum(term)
        dE = d_term.sum(axis=1) + _LD(U) * _levels(c) * E
        kl = np.log1p(E)
        value = T * T * kl
        radius = T * T * (dE / (1 + E) + _LD(U) * kl + _TINY) + _LD(U) * 2 * value
    # KL is exactly 0 where the rows differ by a constant (softmax is shift invariant):
    # s - t exact (its two-sum error 0) and equal along the row
    with np.errstate(all="ignore"):
        d = s - t
        back = d - s
        exact = ((s - (d - back)) + (-t - back)) == 0
    same = ok & (((s == t) | exact).all(axis=1) & (d == d[:, :1]).all(axis=1))
    radius = np.where(np.isnan(radius), np.inf, radius)  # an error bound lost (inf * 0) bounds nothing
    return Candidate(np.where(same, 0, value), np.where(same, 0, radius), same, ~ok)


CANDIDATES = {
    "softmax": _softmax, "log_softmax": _log_softmax, "logsumexp": _logsumexp,
    "cross_entropy": _cross_entropy, "binary_cross_entropy": _binary_cross_entropy,
    "binary_cross_entropy_with_logits": _binary_cross_entropy_with_logits,
    "distillation_loss": _distillation_loss,
}


def candidate(function, group):
    """The :class:`Candidate` of ``function`` on a :class:`RowGroup`: arrays shaped like
    the output (N, C) or (N,); the radius already carries :data:`SAFETY` and the floor."""
    found = CANDIDATES[get_function(function).name](group)
    with np.errstate(all="ignore"):
        magnitude = np.where(np.isfinite(found.value) & (found.radius != 0), np.abs(found.value), 0)
        radius = SAFETY * found.radius + _FLOOR * _LD(U) * magnitude  # exact values keep radius 0
    open_ = np.asarray(found.open, dtype=bool) | np.isnan(found.value) | ~np.isfinite(radius)
    return Candidate(found.value, radius, np.asarray(found.exact_zero, dtype=bool), open_, found.side)


# --- the decision -----------------------------------------------------------------------


def fraction_of_power(magnitude, exponent):
    """0 where ``magnitude`` (``frexp`` exponent ``exponent``) is a power of two."""
    return np.ldexp(magnitude, -exponent.astype(np.int32)) - _LD(0.5)


def decide(value, radius, fmt, side=None):
    """``(rounded, units, units_lo, ulp_exponent, decided)`` of long double candidates
    ``value ± radius`` in ``fmt``: rounded where every number of the interval rounds to
    the same value of ``fmt`` and lies in one binade; ``units + units_lo`` is the
    candidate in ulps of that binade (``2**ulp_exponent``). A zero candidate rounds to a
    zero of its sign (an exact zero, or a truth far below the smallest subnormal: the
    radius then reaches only as far); an infinite or NaN one is left open."""
    fmt = get_format(fmt)
    t = np.asarray(value, dtype=_LD).ravel()
    r = np.asarray(radius, dtype=_LD).ravel()
    p = fmt.precision
    emax = int(math.log2(fmt.largest_finite))
    with np.errstate(all="ignore"):
        magnitude = np.abs(t)
        finite = np.isfinite(t) & np.isfinite(r)
        nonzero = finite & (t != 0)
        _, exponent = np.frexp(np.where(nonzero, magnitude, 1))
        binade = np.where(nonzero, np.maximum(exponent.astype(np.int64) - 1, fmt.emin), fmt.emin)
        # with a side (see Candidate) the truth lies on one side of the candidate only:
        # ``toward`` zero or away from it
        side = np.zeros(len(t), dtype=np.int8) if side is None else np.asarray(side).ravel()
        toward = (side * np.sign(t)) < 0
        away = (side * np.sign(t)) > 0
        # a power of two with the truth just below it: the truth's binade is the lower one
        power = nonzero & (fraction_of_power(magnitude, exponent) == 0)
        lower = toward & power & (binade > fmt.emin)
        binade = np.where(lower, binade - 1, binade)
        ulp_exponent = (binade - (p - 1)).astype(np.int32)
        units = np.ldexp(t, -ulp_exponent)
        r_units = np.ldexp(r, -ulp_exponent)
        nearest = np.rint(units)
        fraction = np.abs(units) - np.floor(np.abs(units))
        bottom = _LD(2.0) ** (p - 1)
        top = _LD(2.0) ** p
        clear_of_midpoint = np.abs(fraction - 0.5) > r_units
        # an exact midpoint plus a rest of known sign rounds toward the rest
        tie = (fraction == 0.5) & (side != 0) & (r_units < 0.5)
        nearest = np.where(tie, np.copysign(np.floor(np.abs(units)) + away, t), nearest)
        clear_of_midpoint |= tie
        # distances to the binade's ends are exact in long double (units has p bits
        # above the point); comparing units +- r_units would round them away
        to_top, to_bottom = top - np.abs(units), np.abs(units) - bottom
        fits_above = lower | np.where(toward, to_top > 0, to_top > r_units)
        fits_below = (binade == fmt.emin) | np.where(away, to_bottom >= 0, (to_bottom > r_units) | (
            (to_bottom == 0) & (r_units == 0)))
        in_binade = fits_above & fits_below
        threshold = _LD(fmt.largest_finite) + np.ldexp(_LD(1), emax - p)   # overflow boundary
        overflowing = magnitude - r > threshold
        below_overflow = magnitude + r < threshold
        decided = finite & ((clear_of_midpoint & in_binade & below_overflow) | overflowing)
        rounded = np.ldexp(nearest, ulp_exponent).astype(np.float64)
        rounded = np.where(overflowing | (np.abs(rounded) > fmt.largest_finite), np.copysign(np.inf, t.astype(np.float64)), rounded)
        units64 = units.astype(np.float64)
        units_lo = (units - units64.astype(_LD)).astype(np.float64)
    # An infinite candidate comes only from a -inf entry (log_softmax there, the loss of
    # a -inf target): the truth is that infinity.
    infinite = np.isinf(t) & np.isfinite(r)
    with np.errstate(over="ignore"):  # t beyond float64 is left open (NaN) here
        rounded = np.where(finite, rounded, np.where(infinite, t.astype(np.float64), np.nan))
    decided = decided | infinite
    # overflowing or infinite: units carry the value, as the oracle's units of an infinite truth
    units64 = np.where(overflowing | infinite, rounded, units64)
    units_lo = np.where(overflowing | infinite | ~np.isfinite(units_lo), 0.0, units_lo)
    ulp_exponent = np.where(overflowing | infinite, 0, ulp_exponent).astype(np.int32)
    return rounded, units64, units_lo, ulp_exponent, decided


# --- layout and the oracle ------------------------------------------------------------


def flat_layout(rows):
    """``[(start, n, c)]`` per group of a :class:`RowSet`: where its outputs start in the
    flat order, its rows and its outputs per row (C for softmax and log_softmax, else 1)."""
    vector = get_function(rows.function).vector_output
    out, start = [], 0
    for group in rows.groups:
        per_row = group.length if vector else 1
        out.append((start, group.rows, per_row))
        start += group.rows * per_row
    return out


def row_points(group, indices):
    """The catalog points (Python values, as the oracle and conventions take them) of
    the rows ``indices`` of a group."""
    args = group.arguments
    points = []
    for i in indices:
        if len(args) == 1:
            points.append((tuple(args[0][i].tolist()),))
        elif len(args) == 3:
            points.append((tuple(args[0][i].tolist()), tuple(args[1][i].tolist()), float(args[2])))
        elif args[0].ndim == 2:
            points.append((tuple(args[0][i].tolist()), int(args[1][i])))
        else:
            points.append((float(args[0][i]), float(args[1][i])))
    return points


def _element_inputs(function, group):
    """``x`` of each output value (see the module docstring)."""
    args = group.arguments
    first = np.asarray(args[0], dtype=np.float64)
    if first.ndim == 1:
        return first
    if get_function(function).vector_output:
        return first.ravel()
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(np.isnan(first), -np.inf, first), axis=1)
    if len(args) == 2:
        return first[np.arange(len(first)), args[1]]
    return top


def row_truths(rows, *, sample=SAMPLE_ROWS, seed=0, workers=1, cache=True):
    """The :class:`PointTruths` of every output value of the :class:`RowSet` ``rows``
    (flattened: see :func:`flat_layout`), by the steps of the module docstring."""
    fmt = get_format(rows.format)
    function = get_function(rows.function).name
    layout = flat_layout(rows)
    total = sum(n * c for _, n, c in layout)
    fields = {name: np.zeros(total, dtype=dtype) for name, dtype in FIELDS}
    fields["bits"] = np.arange(total, dtype=np.uint64)
    fields["binade_known"][:] = True
    fast_decided = 0
    asked_rows = []  # (group index, row index)
    disagreements = []
    # the seeded sample: rows of every group short enough for the oracle
    rng = np.random.default_rng([int(seed), ROWS_VERSION, total])
    eligible = [(g, i) for g, group in enumerate(rows.groups) if group.length <= SAMPLE_MAX_LENGTH
                for i in range(group.rows)]
    sampled = set()
    if sample and eligible:
        picks = rng.choice(len(eligible), size=min(int(sample), len(eligible)), replace=False)
        sampled = {eligible[int(k)] for k in picks.tolist()}
    kept = {}  # the candidates of sampled rows: (value, radius) per flat index
    for g, (group, (start, n, c)) in enumerate(zip(rows.groups, layout)):
        found = candidate(function, group)
        rounded, units, units_lo, exponent, decided = decide(found.value, found.radius, fmt, found.side)
        decided &= ~found.open.ravel()
        where = slice(start, start + n * c)
        fields["x"][where] = _element_inputs(function, group)
        fields["rounded"][where] = rounded
        fields["units"][where] = units
        fields["units_lo"][where] = units_lo
        fields["ulp_exponent"][where] = exponent
        fields["exact_zero"][where] = found.exact_zero.ravel()
        fields["decided"][where] = decided
        fast_decided += int(np.count_nonzero(decided))
        open_rows = np.flatnonzero(~decided.reshape(n, c).all(axis=1))
        asked_rows += [(g, int(i)) for i in open_rows]
        value, radius = found.value.ravel(), found.radius.ravel()
        for (h, i) in sampled:
            if h == g:
                for j in range(c):
                    kept[start + i * c + j] = (value[i * c + j], radius[i * c + j])
    open_set = set(asked_rows)
    asked_rows += sorted(r for r in sampled if r not in open_set)
    by_group = {}
    for g, i in asked_rows:
        by_group.setdefault(g, []).append(i)
    for g, indices in by_group.items():
        group = rows.groups[g]
        start, n, c = layout[g]
        truths = truth_many(function, row_points(group, indices), fmt, workers=workers, cache=cache)
        for i, truth in zip(indices, truths):
            at = start + i * c
            for j, (r, e) in enumerate(truth.elements):
                k = at + j
                fields["oracle"][k] = True
                if r is None:
                    fields["decided"][k] = False
                    fields["rounded"][k] = np.nan
                    continue
                u, u_lo, ex, zero = oracle_units(e, r, fmt)
                if fields["decided"][k] and len(disagreements) < DISAGREEMENTS_KEPT:
                    problem = _disagreement(fields, k, r, u, u_lo, ex, zero) or \
                        _outside_radius(kept.get(k), e, fmt.precision)
                    if problem:
                        disagreements.append({"input": _short_point(row_points(group, [i])[0]),
                                              "input_bits": f"row {i} of the {group.length}-wide group"
                                                            f" {g}, value {j}",
                                              "kind": problem, "fast_rounded": float(fields["rounded"][k]),
                                              "oracle_rounded": r, "oracle_exact": str(e)})
                fields["rounded"][k], fields["units"][k], fields["units_lo"][k] = r, u, u_lo
                fields["ulp_exponent"][k], fields["exact_zero"][k] = ex, zero
                fields["decided"][k] = True
    return PointTruths(function, fmt.name, **fields, fast_decided=fast_decided, disagreements=disagreements)


def _short_point(point, limit=16):
    """A point for a message: rows longer than ``limit`` cut, with their length."""
    out = []
    for a in point:
        if isinstance(a, tuple) and len(a) > limit:
            out.append(list(a[:limit]) + [f"... {len(a)} entries"])
        else:
            out.append(list(a) if isinstance(a, tuple) else a)
    return out


def _outside_radius(kept, exact, precision):
    """"bound" where the exact value lies outside the candidate's interval."""
    if kept is None:
        return None
    value, radius = kept
    if not (np.isfinite(value) and hasattr(exact, "_mpf_")):
        return None
    import mpmath

    with mpmath.workprec(256):
        # the oracle keeps p + 32 bits of the exact value: that much slack on top
        error = abs(ld_to_mpf(value) - exact)
        return "bound" if error > ld_to_mpf(radius) + abs(exact) * mpmath.ldexp(1, -(precision + 30)) else None


def ld_to_mpf(value):
    """A long double exactly as an mpmath number (its two float64 halves)."""
    import mpmath

    mantissa, exponent = np.frexp(np.longdouble(value))
    digits = int(np.ldexp(mantissa, 64))  # an integer of at most 64 bits: exact
    return mpmath.ldexp(mpmath.mpf(digits), int(exponent) - 64)


def _disagreement(fields, k, rounded, u, u_lo, exponent, zero):
    """Why the candidate's decision at flat index ``k`` and the oracle differ, or None:
    another rounding, another exact zero, or the exact value outside the radius."""
    mine = float(fields["rounded"][k])
    if not (mine == rounded and math.copysign(1, mine) == math.copysign(1, rounded)) \
            and not (mine == 0 and rounded == 0 and (zero or fields["exact_zero"][k])):
        if not (mine != mine and rounded != rounded):
            return "rounding"
    if bool(fields["exact_zero"][k]) != bool(zero):
        return "exact zero"
    return None


# --- on disk ---------------------------------------------------------------------------

_KIND = "refact.row-truths/1"


def _source_digest(make_rows):
    """A digest of the source of the module that builds the rows: the cached file holds
    the rows themselves, so a change to how they are made must not find the old ones
    (ROWS_VERSION, bumped by hand, is easily forgotten)."""
    try:
        text = inspect.getsource(inspect.getmodule(make_rows))
    except (OSError, TypeError):  # no source at hand (a frozen or zipped install)
        text = make_rows.__qualname__
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _digest(function, fmt, seed, sizes):
    from refact import __version__

    text = json.dumps([_KIND, function, fmt, int(seed), sizes, ROWS_VERSION, ORACLE_VERSION, __version__,
                       np.__version__, U, SAFETY, SAMPLE_ROWS])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _pack(rows):
    """The set as one float64 array and its layout (shapes and temperatures)."""
    parts, layout = [], []
    for group in rows.groups:
        shapes = []
        for a in group.arguments:
            if np.ndim(a) == 0:
                shapes.append(None)
            else:
                shapes.append(list(np.shape(a)))
                parts.append(np.asarray(a, dtype=np.float64).ravel())
        parts.append(group.family.astype(np.float64))
        layout.append({"shapes": shapes, "temperature": group.temperature,
                       "index": [a.dtype.kind == "i" if np.ndim(a) else False for a in group.arguments]})
    return np.concatenate(parts) if parts else np.zeros(0), layout


def _unpack(function, fmt, flat, layout):
    groups, at = [], 0
    for entry in layout:
        arguments = []
        for shape, is_index in zip(entry["shapes"], entry["index"]):
            if shape is None:
                arguments.append(entry["temperature"])
                continue
            size = int(np.prod(shape))
            a = flat[at:at + size].reshape(shape)
            arguments.append(a.astype(np.int64) if is_index else a)
            at += size
        n = entry["shapes"][0][0]
        family = np.asarray(flat[at:at + n]).astype(np.int8)
        at += n
        groups.append(RowGroup(tuple(arguments), family))
    return RowSet(function, fmt, groups)


def load_row_truths(path):
    """``(rows, truths)`` saved at ``path`` (both memory-mapped), or None when a file
    is missing or its contents fail their digest."""
    try:
        with open(f"{path}.json", encoding="utf-8") as f:
            meta = json.load(f)
        if meta.get("kind") != _KIND:
            return None
        for suffix, key in (("", "truths_digest"), (".inputs.npy", "inputs_digest")):
            with open(path + suffix, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() != meta[key]:
                    return None
        table = np.load(path, mmap_mode="r", allow_pickle=False)
        flat = np.load(path + ".inputs.npy", mmap_mode="r", allow_pickle=False)
        if table.dtype != np.dtype(list(FIELDS)):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    truths = PointTruths(meta["function"], meta["format"], **{name: table[name] for name, _ in FIELDS},
                         fast_decided=int(meta["fast_decided"]), disagreements=list(meta["disagreements"]))
    return _unpack(meta["function"], meta["format"], flat, meta["layout"]), truths


def _npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def cached_row_truths(function, fmt, make_rows, seed=0, directory=None, *, workers=1, **sizes):
    """``(path, rows, truths)``: the rows ``make_rows(function, fmt, seed, **sizes)``
    builds (the case stage's :func:`~refact.conformance.cases.rows.dense_rows`) and
    their :func:`row_truths`, saved under ``directory`` (the cache's by default) or
    loaded from there, keyed by the arguments; with caching off the path is None."""
    fmt = get_format(fmt).name
    function = get_function(function).name
    if directory is None:
        directory = store.cache_directory()
    path = None
    if directory:
        key = json.dumps([{k: (sorted(v.items()) if isinstance(v, dict) else v) for k, v in sorted(sizes.items())},
                          _source_digest(make_rows)])
        path = os.path.join(directory, "truths", f"rows-{function}-{fmt}-{_digest(function, fmt, seed, key)}.npy")
        found = load_row_truths(path)
        if found is not None:
            return (path, *found)
    rows = make_rows(function, fmt, seed, **sizes)
    truths = row_truths(rows, seed=seed, workers=workers, cache=bool(store.cache_directory()))
    if path is not None:
        table = np.empty(len(truths), dtype=list(FIELDS))
        for name, _ in FIELDS:
            table[name] = getattr(truths, name)
        flat, layout = _pack(rows)
        data, inputs = _npy_bytes(table), _npy_bytes(flat)
        meta = {"kind": _KIND, "function": function, "format": fmt, "fast_decided": truths.fast_decided,
                "disagreements": truths.disagreements, "layout": layout,
                "truths_digest": hashlib.sha256(data).hexdigest(),
                "inputs_digest": hashlib.sha256(inputs).hexdigest()}
        try:
            store.atomic_write_bytes(path + ".inputs.npy", inputs)
            store.atomic_write_bytes(path, data)
            store.atomic_write_text(f"{path}.json", json.dumps(meta))
        except OSError:
            path = None
    return path, rows, truths

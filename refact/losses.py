"""Losses with torch.nn.functional's semantics and the mathematically exact values.

The arguments, shapes, weights and reductions follow PyTorch (``binary_cross_entropy``,
``binary_cross_entropy_with_logits``, ``cross_entropy``, and ``kl_div`` with
``reduction="batchmean"`` for distillation), but the values are the mathematical
ones, with no clamp or epsilon: -log 0 is +inf here, where torch's BCE clamps the
log at -100 (a backend convention, reported as such by the conformance suite).

Conventions shared by all the losses:

* A term whose *target* coefficient is 0 is absent, so 0 * log 0 = 0: BCE with y = 1
  and p = 1 is 0, a probability target of 0 ignores that class even where the model
  gives it probability 0, and a teacher probability of 0 adds nothing to the KL.
  A nonzero target on a zero probability gives +inf.
* *Weights* (``weight``, ``pos_weight``, class weights) multiply the unrounded term:
  each term and its weights are carried as a double-double with its binary exponent
  apart (``_dd.scaled``), so a subnormal term times a weight of 1e300 keeps every bit
  (rounding the term first would cost up to 10**12 ULPs), and the value is rounded
  once, after the reduction. IEEE rules otherwise: a weight of 0 on an infinite loss is
  NaN, as in torch.
* ``reduction`` is ``"none"`` (one loss per element, or per row of logits, nested as
  the input), ``"sum"`` (summed exactly with math.fsum) or ``"mean"``. A mean over
  nothing (no elements, or only ignored targets) is NaN, as in torch.
* Every loss here is a sum of terms of one sign, so it is accurate to a few ULPs
  (relative); the one exception, the KL divergence of two close distributions, is
  rewritten so that it is one too (see distillation_loss).
"""

import decimal
import fractions
import math

from ._dd import (
    dd_div, dd_mul, exp_scaled, scaled, scaled_add, scaled_div, scaled_mul, scaled_to_float, two_prod, two_sum,
)
from ._inputs import check_temperature, describe, from_array, to_array, to_float, to_index
from .elementwise import softplus
from .softmax import decimal_value, lane_parts, log_softmax_lane, softmax_lane

__all__ = [
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss",
]

_REDUCTIONS = ("none", "mean", "sum")


# -- shared pieces --------------------------------------------------------------------------

def _check_reduction(reduction, function):
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"{function}(): reduction must be 'none', 'mean' or 'sum', not {reduction!r}")


def _position(index, shape):
    """The nested index, as text, of flat position ``index`` in an array of ``shape``."""
    if not shape:
        return ""
    digits = []
    for size in reversed(shape):
        index, digit = divmod(index, size)
        digits.append(digit)
    return "".join(f"[{d}]" for d in reversed(digits))


def _check_unit_interval(values, shape, function, argument):
    for i, v in enumerate(values):
        if not 0.0 <= v <= 1.0 and v == v:  # NaN passes: NaN in, NaN out
            raise ValueError(f"{function}(): {argument}{_position(i, shape)} = {v!r} is outside [0, 1]")


def _broadcast(value, shape, function, argument):
    """``value`` (None, a number, or an array) broadcast to ``shape``, as a flat list.

    torch's rule for loss weights: the dimensions are aligned from the right and each of
    ``value`` must equal the input's or be 1 (a size-1 dimension is repeated). The weight
    may not have more dimensions than the input: the loss keeps the input's shape, and
    torch rejects a weight that would enlarge it (``weight`` of shape (1, N) for an input
    of shape (N,) is an error there, not a broadcast).
    """
    if value is None:
        return None
    value_shape, flat = to_array(value, function, argument)
    if len(value_shape) > len(shape) or any(
            size not in (1, target) for size, target in zip(reversed(value_shape), reversed(shape))):
        raise ValueError(
            f"{function}(): {argument} of shape {value_shape} does not broadcast to the input's {shape}: "
            "aligned from the right, each dimension must be 1 or the input's, and it may not have "
            "more dimensions than the input")
    if value_shape == shape:
        return flat
    padded = (1,) * (len(shape) - len(value_shape)) + value_shape
    # The flat index of the source element, one axis at a time (a size-1 axis stays at 0).
    sources = [0]
    for size, target in zip(padded, shape):
        sources = [s * size + (i if size > 1 else 0) for s in sources for i in range(target)]
    return [flat[s] for s in sources]


def _total(values):
    """The sum of ``values``, exactly rounded (inf - inf gives NaN)."""
    try:
        return math.fsum(values)
    except ValueError:  # +inf and -inf together
        return math.nan
    except OverflowError:  # a partial sum beyond the largest float: the exact sum may still fit
        special = [v for v in values if not math.isfinite(v)]
        if special:  # NaN or infinities decide, as they would have without the overflow
            return _total(special)
        exact = sum(map(fractions.Fraction, values))
        try:
            return float(exact)
        except OverflowError:
            return math.inf if exact > 0 else -math.inf


def _scaled_sum(values):
    total = _ZERO
    for value in values:
        total = scaled_add(total, value)
    return total


def _reduce(losses, shape, reduction, denominator=None):
    """Apply a reduction to a flat list of losses of ``shape``, scaled numbers (see _dd),
    each rounded once ("none"), or summed and divided before the one rounding.

    ``denominator`` (a scaled number, by default the count) is what "mean" divides by.
    """
    if reduction == "none":
        return from_array(shape, list(map(scaled_to_float, losses)))
    total = _scaled_sum(losses)
    if reduction == "mean":
        count = scaled(float(len(losses))) if denominator is None else denominator
        if count[0] == 0.0:
            return math.nan
        if not math.isfinite(count[0]):
            return scaled_to_float(total) / count[0]
        total = scaled_div(total, count)
    return scaled_to_float(total)


_ZERO = (0.0, 0.0, 0)
_NAN = (math.nan, 0.0, 0)
_INF = (math.inf, 0.0, 0)
# Terms below this are rounded on the coarse grid of the subnormals (or near it) if formed as
# floats: they are formed from their exact parts instead.
_TINY_TERM = 2.0 ** -900
def _one_minus(y):
    """1 - y exactly, as a scaled number."""
    return scaled(*two_sum(1.0, -y))


def _bce_term(p, y):
    """-[y log p + (1 - y) log(1 - p)] as a scaled number, a zero coefficient dropping its term.

    -log p is never below 2**-53 for p < 1; -log(1 - p) = p (1 + p/2 + ...) is p itself,
    exactly, below _TINY_TERM, where log1p would round it on the subnormal grid.
    """
    if p != p or y != y:
        return _NAN
    loss = _ZERO
    if y > 0.0:
        loss = scaled_mul(scaled(y), scaled(-math.log(p))) if p > 0.0 else _INF
    if y < 1.0:
        log_q = scaled(p) if p < _TINY_TERM else scaled(-math.log1p(-p)) if p < 1.0 else _INF
        loss = scaled_add(loss, scaled_mul(_one_minus(y), log_q))
    return loss


def _weighted(losses, weights):
    return losses if weights is None else [scaled_mul(loss, scaled(w)) for loss, w in zip(losses, weights)]


def binary_cross_entropy(p, y, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities: -w [y log p + (1 - y) log(1 - p)].

    ``p`` and ``y`` are numbers or arrays of one shape, with values in [0, 1];
    ``weight`` is None, a number, or an array that broadcasts to that shape as in torch
    (aligned from the right, each dimension 1 or the input's: for (N, C), weights of shape
    (1,), (C,), (1, C), (N, 1) or (N, C); never more dimensions than p). log(1 - p) is ``log1p(-p)``, exact however close p is to 0, and the
    two terms are both >= 0, so nothing cancels: within a few ULPs. 0 log 0 = 0, and a
    nonzero target on a zero probability is +inf, the true value (torch clamps the log
    at -100 and would give 100):

    >>> binary_cross_entropy([1.0, 0.0], [1.0, 0.0])
    0.0
    >>> binary_cross_entropy(0.0, 1.0)
    inf
    >>> binary_cross_entropy(1e-300, 0.0)  # log1p keeps -log(1 - 1e-300) = 1e-300
    1e-300

    Raises ValueError for p or y outside [0, 1], mismatched shapes, a weight that does
    not broadcast, or an unknown reduction.
    """
    function = "binary_cross_entropy"
    _check_reduction(reduction, function)
    shape, ps, ys = _input_and_labels(p, y, function, "p")
    _check_unit_interval(ps, shape, function, "p")
    weights = _broadcast(weight, shape, function, "weight")
    return _reduce(_weighted(list(map(_bce_term, ps, ys)), weights), shape, reduction)


def _input_and_labels(x, y, function, argument):
    """Flatten ``x`` and the labels ``y``: same shape, labels in [0, 1]."""
    shape, xs = to_array(x, function, argument)
    target_shape, ys = to_array(y, function, "y")
    if target_shape != shape:
        raise ValueError(f"{function}(): {argument} and y must have the same shape, "
                         f"got {shape} and {target_shape}")
    _check_unit_interval(ys, shape, function, "y")
    return shape, xs, ys


def _softplus_scaled(z):
    """softplus(z) as a scaled number: e**z (1 - e**z/2 + ...) is e**z itself where it is tiny."""
    if z < -700.0:
        return _ZERO if z == -math.inf else exp_scaled(z)
    return scaled(softplus(z))


def _bce_logits_term(x, y, pw):
    """pw y softplus(-x) + (1 - y) softplus(x): two terms >= 0, never a difference."""
    if x != x or y != y or pw != pw:
        return _NAN
    loss = _ZERO
    if y > 0.0:
        loss = scaled_mul(scaled_mul(scaled(pw), scaled(y)), _softplus_scaled(-x))
    if y < 1.0:
        loss = scaled_add(loss, scaled_mul(_one_minus(y), _softplus_scaled(x)))
    return loss


def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """Binary cross-entropy of logits: -w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))].

    torch writes it (1 - y) x + (1 + (pw - 1) y) softplus(-x); it is computed here as
    pw y softplus(-x) + (1 - y) softplus(x), which is the same number but a sum of two
    terms >= 0 (for pw >= 0), so there is no cancellation for a fractional y and each
    softplus is the accurate one of the core. ``pos_weight`` weighs the positive term
    and broadcasts like ``weight`` (typically one value per class, the last axis).
    A zero target coefficient drops its term, so a confident correct logit costs 0
    even at infinity (torch computes 0 * inf = NaN there):

    >>> binary_cross_entropy_with_logits(800.0, 0.0)
    800.0
    >>> binary_cross_entropy_with_logits(-800.0, 0.0)  # softplus(-800) = e^-800 underflows
    0.0
    >>> binary_cross_entropy_with_logits(math.inf, 1.0)
    0.0

    Raises ValueError for y outside [0, 1], mismatched shapes, weights that do not
    broadcast, or an unknown reduction.
    """
    function = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, function)
    shape, xs, ys = _input_and_labels(x, y, function, "x")
    weights = _broadcast(weight, shape, function, "weight")
    pos_weights = _broadcast(pos_weight, shape, function, "pos_weight") or [1.0] * len(xs)
    return _reduce(_weighted(list(map(_bce_logits_term, xs, ys, pos_weights)), weights), shape, reduction)


# -- cross-entropy --------------------------------------------------------------------------

def _class_indices(items, batched, function):
    """The class indices ``items`` (the target's elements as given, read once by to_array) as ints."""
    indices = []
    for n, item in enumerate(items):
        where = f"[{n}]" if batched else ""
        if isinstance(item, bool) or not hasattr(type(item), "__index__"):
            raise TypeError(f"{function}(): target{where} must be an integer class index, "
                            f"not {type(item).__name__} {describe(item)}")
        indices.append(to_index(item, function, "target", where))
    return indices


def cross_entropy(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Cross-entropy of logits against class indices or class probabilities, as torch.

    ``logits`` has shape (C,) or (N, C). ``target`` is either class indices (an int for
    (C,), N ints for (N, C)) or class probabilities of the logits' own shape. Per row,
    with log q = log_softmax(logits) and the smoothed target (1 - eps) y + eps/C:

    * indices: loss = (1 - eps) w_y (-log q_y) + (eps / C) sum_c w_c (-log q_c); a row
      whose target is ``ignore_index`` gives 0, and ``"mean"`` divides the sum by the
      total weight w_y of the rows not ignored (by their count without weights);
    * probabilities: loss = sum_c ((1 - eps) y_c + eps / C) w_c (-log q_c), and
      ``"mean"`` divides by N. The probabilities are used as given, like torch.

    log_softmax has no cancellation and the terms are all >= 0 (for weights >= 0), so
    the loss is within a few ULPs, even where the probability itself underflows: for
    the seed's vector, the probability of class 7 is about 1.34e-4345, and

    >>> cross_entropy([1, 2, 3, 4, -3, -4, -2, -10000], 7)
    10004.442586111712

    Raises ValueError for an index out of range that is not ``ignore_index``, shapes
    that do not match, a weight that is not of length C, label_smoothing outside
    [0, 1] or an unknown reduction; TypeError for a class index that is not an int.
    """
    function = "cross_entropy"
    _check_reduction(reduction, function)
    smoothing = to_float(label_smoothing, function, "label_smoothing")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"{function}(): label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if isinstance(ignore_index, bool) or not hasattr(type(ignore_index), "__index__"):
        raise TypeError(f"{function}(): ignore_index must be an int, not {type(ignore_index).__name__}")
    ignore_index = to_index(ignore_index, function, "ignore_index")
    shape, flat = to_array(logits, function, "logits")
    if len(shape) not in (1, 2) or shape[-1] == 0:
        raise ValueError(f"{function}(): logits must have shape (C,) or (N, C) with C >= 1, got {shape}")
    classes = shape[-1]
    rows = [flat[i:i + classes] for i in range(0, len(flat), classes)]
    weights = None
    if weight is not None:
        weight_shape, weights = to_array(weight, function, "weight")
        if weight_shape != (classes,):
            raise ValueError(f"{function}(): weight must have shape ({classes},), got {weight_shape}")
    given = []  # the target's elements as given: class indices must be ints, not floats
    target_shape, target_flat = to_array(target, function, "target", raw=given)
    if target_shape == shape:
        losses = [_soft_target_loss(row, target_flat[i * classes:(i + 1) * classes], weights, smoothing)
                  for i, row in enumerate(rows)]
        denominator = None
    elif target_shape == shape[:-1]:
        indices = _class_indices(given, len(shape) == 2, function)
        for n, k in enumerate(indices):
            if not 0 <= k < classes and k != ignore_index:
                where = f"[{n}]" if len(shape) == 2 else ""
                raise ValueError(f"{function}(): target{where} = {k} is out of range for {classes} classes")
        losses, counted = [], []
        for row, k in zip(rows, indices):
            if k == ignore_index:
                losses.append(_ZERO)
                continue
            losses.append(_index_target_loss(row, k, weights, smoothing))
            counted.append(scaled(1.0 if weights is None else weights[k]))
        denominator = _scaled_sum(counted)
    else:
        raise ValueError(
            f"{function}(): target must have shape {shape[:-1]} (class indices) or {shape} "
            f"(class probabilities), got {target_shape}")
    return _reduce(losses, shape[:-1], reduction, denominator)


def _negative_log_q(row, log_q, c):
    """-log q_c as a scaled number.

    It is tiny only at the row's one maximum, where it is log1p(R) = R (1 - R/2 + ...),
    R = sum_{j != top} e**(x_j - m): below _TINY_TERM that R is summed here from its
    exponentials, with their exponents apart, instead of rounded on the subnormal grid.
    """
    value, m = -log_q[c], row[c]
    if not (0.0 <= value < _TINY_TERM and math.isfinite(m)):  # +inf in the row: its lane's limit
        return scaled(value)
    rest = _ZERO
    for j, x in enumerate(row):
        if j != c and x != -math.inf:
            h, lo = two_sum(x, -m)  # e**(h + lo) = e**h (1 + lo)
            rest = scaled_add(rest, scaled_mul(exp_scaled(h), scaled(1.0, lo)))
    return rest


def _index_target_loss(row, k, weights, smoothing):
    log_q = log_softmax_lane(row, 1.0)
    loss = _ZERO
    if smoothing < 1.0:
        w = scaled(1.0 if weights is None else weights[k])
        loss = scaled_mul(scaled_mul(_one_minus(smoothing), w), _negative_log_q(row, log_q, k))
    if smoothing > 0.0:
        spread = _ZERO
        for c in range(len(row)):
            term = _negative_log_q(row, log_q, c)
            spread = scaled_add(spread, term if weights is None else scaled_mul(scaled(weights[c]), term))
        loss = scaled_add(loss, scaled_mul(scaled_div(scaled(smoothing), scaled(float(len(row)))), spread))
    return loss


def _soft_target_loss(row, target, weights, smoothing):
    log_q = log_softmax_lane(row, 1.0)
    keep, uniform = _one_minus(smoothing), scaled_div(scaled(smoothing), scaled(float(len(row))))
    loss = _ZERO
    for c, y in enumerate(target):
        if y == 0.0 and smoothing == 0.0:
            continue  # 0 log q = 0, even for q = 0
        coefficient = scaled(y)
        if smoothing > 0.0:
            coefficient = scaled_add(scaled_mul(coefficient, keep), uniform)
        if weights is not None:
            coefficient = scaled_mul(coefficient, scaled(weights[c]))
        loss = scaled_add(loss, scaled_mul(coefficient, _negative_log_q(row, log_q, c)))
    return loss


# -- distillation ---------------------------------------------------------------------------

# 1/k! for k = 2..26: phi(y) = e^-y - 1 + y = sum_k (-y)^k / k! converges to 2**-60 for |y| <= 2.
_INVERSE_FACTORIALS = tuple(1.0 / math.factorial(k) for k in range(2, 27))


# Outside [_NEAR_UNDERFLOW, _NEAR_OVERFLOW] a KL, its terms or t**2 KL may lose bits to the
# subnormal range or overflow: decimal decides.
_NEAR_UNDERFLOW = 2.0 ** -950
_NEAR_OVERFLOW = 2.0 ** 1000
# Dekker's products are exact above about 2**-968: terms of double-double parts above this.
_DD_NORMAL = 2.0 ** -900


def _phi(y):
    """e^-y - 1 + y for -2 < y < 1, where the direct formula cancels, as a double-double:
    y^2 (1/2 - y h(y)), h by Horner in floats (its error reaches the result scaled by
    |y h| / |1/2 - y h| < 0.6), y^2 and 1/2 - y h exactly (Dekker's product, TwoSum)."""
    total = 0.0
    for c in reversed(_INVERSE_FACTORIALS[2:]):
        total = c - y * total
    h, h_lo = two_sum(_INVERSE_FACTORIALS[1], -y * total)  # 1/3! is not a float: its error is 2**-56 of h
    yh, yh_lo = two_prod(y, h)
    g, g_lo = two_sum(_INVERSE_FACTORIALS[0], -yh)  # 1/2 is exact
    g_lo -= yh_lo + y * h_lo
    square, square_lo = two_prod(y, y)
    return dd_mul(square, square_lo, g, g_lo)


def _distillation_row(teacher, student, t):
    """t^2 KL(softmax(teacher/t) || softmax(student/t)) for one pair of rows.

    With p, q the two distributions and y_i = log p_i - log q_i, sum_i q_i = 1 turns
    KL = sum_i p_i y_i into sum_i p_i phi(y_i), phi(y) = e^-y - 1 + y >= 0 (a p_i too
    small for a float leaves its q_i): a sum of terms >= 0 that is insensitive, to
    first order, to an error common to all y_i, such as the one in the difference of
    the two log-normalizers. y_i is formed from the double-double differences of the
    lanes, so it is accurate even when tiny, and each term from p_i, q_i and phi(y_i) in
    double-double, so that the KL and t^2 KL are rounded once (within about 1 ULP, measured
    against mpmath). The errors left are estimated, and when
    they could reach the last bits (a KL of second order in tiny differences), the row
    is evaluated in decimal arithmetic instead.
    """
    rows = teacher + student
    if any(v != v or v == math.inf for v in rows) or max(teacher) == -math.inf or max(student) == -math.inf:
        # NaN, +inf or an all -inf row: the lane conventions decide, the plain formula applies them.
        p = softmax_lane(teacher, t)
        log_p, log_q = log_softmax_lane(teacher, t), log_softmax_lane(student, t)
        return _total([p_i * (lp - lq) for p_i, lp, lq in zip(p, log_p, log_q) if p_i != 0.0]) * (t * t)
    p, q = softmax_lane(teacher, t), softmax_lane(student, t)
    _, hi_p, lo_p, heads, tails, r_p, r_p_lo = lane_parts(teacher, t)
    _, hi_q, lo_q, heads_q, tails_q, r_q, r_q_lo = lane_parts(student, t)
    p_dd, q_dd = _quotients(heads, tails, r_p, r_p_lo), _quotients(heads_q, tails_q, r_q, r_q_lo)
    log_norm_p = math.log1p(r_p) + r_p_lo / (1.0 + r_p)
    log_norm_q = math.log1p(r_q) + r_q_lo / (1.0 + r_q)
    log_ratio = log_norm_p - log_norm_q  # y_i = (hi_p - hi_q) + (lo_p - lo_q) - log_ratio
    terms = []
    spread = orphans = largest = 0.0
    identical = True
    for p_i, q_i, a, a_lo, b, b_lo, p_i_dd, q_i_dd in zip(p, q, hi_p, lo_p, hi_q, lo_q, p_dd, q_dd):
        if p_i == 0.0:
            # p_i phi(y_i) = q_i - p_i + p_i y_i, with p_i below the floats (or 0)
            terms.append(q_i)
            orphans += q_i
            # a p_i below the floats is not 0: the rows differ even where every q_i is 0
            identical = identical and a == -math.inf
            y = (a - b) + ((a_lo - b_lo) - log_ratio) if a != -math.inf else 0.0
            if y > 1.0:  # the p_i (y_i - 1) part, in logarithms
                terms.append(math.exp(a + a_lo - log_norm_p + math.log(y - 1.0)))
            continue
        if b == -math.inf:  # q_i = 0 where p_i > 0, or (s_i - max s)/t beyond the floats
            return math.inf if math.inf in (-v for v in student) else _decimal_distillation_row(
                teacher, student, t)
        d, d_lo = two_sum(a, -b)
        y, y_lo = two_sum(d, -log_ratio)  # y_i rounded once: phi doubles its relative error
        y, y_lo = two_sum(y, y_lo + d_lo + (a_lo - b_lo))
        identical = identical and y == 0.0
        spread += p_i * abs(y)
        largest = max(largest, -a, -b)
        # Each term in double-double where p_i and q_i are well above the subnormals (with
        # p_i, q_i and phi rounded apart a KL was 4.8 ULP off, the budget 4); else in floats.
        if -2.0 < y < 1.0:  # phi(y + y_lo) = phi(y) + y_lo phi'(y), phi'(y) = -expm1(-y)
            if p_i_dd is not None:
                terms.extend(dd_mul(*p_i_dd, *_phi(y)))
                terms.append(-p_i * y_lo * math.expm1(-y))
            else:
                terms.append(p_i * (sum(_phi(y)) - y_lo * math.expm1(-y)))
        else:  # p_i phi(y) = q_i + p_i (y - 1), whose two terms have one sign for y >= 1
            if p_i_dd is not None and q_i_dd is not None:
                y_minus_1, low = two_sum(y, -1.0)
                terms.extend(q_i_dd + dd_mul(*p_i_dd, y_minus_1, low + y_lo))
            else:
                terms.append(q_i + p_i * (y - 1.0))
    if identical and not orphans:
        return 0.0
    kl = _total(terms)
    terms.append(-kl)
    kl_lo = _total(terms)  # kl + kl_lo is the sum of the terms to 2**-106
    # The error left: the double-double differences (2**-100 relative, per element), the
    # error of log_ratio (about 3u (L_p + L_q)), first order through the orphaned q_i,
    # second order otherwise, and a few subnormal spacings per term (an underflowed p_i,
    # q_i or product).
    norm_error = 3.0 * 2.0 ** -53 * (log_norm_p + log_norm_q)
    error = (2.0 ** -100 * (1.0 + largest) * spread + norm_error * orphans + 0.5 * norm_error ** 2
             + len(terms) * 2.0 ** -1070)
    square, square_lo = two_prod(t, t)
    if largest > _NEAR_OVERFLOW or not _NEAR_UNDERFLOW < square < _NEAR_OVERFLOW:
        # beyond the range where t * t and the differences / t are exact enough
        return _decimal_distillation_row(teacher, student, t)
    # A loss provably below half the smallest subnormal is 0 (decimal would need hundreds
    # of digits to say so): the true KL is below twice the computed one and its error,
    # and that times t^2 below 2**-1076 leaves a factor 2 to spare. (2**-1076 is no
    # float: the comparison is scaled by 2**61.)
    if (2.0 * (kl + error) * 2.0 ** 61) * square < 2.0 ** -1015:
        return 0.0
    loss, _ = dd_mul(kl, kl_lo, square, square_lo)  # t^2 KL rounded once
    if error > 2.0 ** -56 * kl or not _NEAR_UNDERFLOW <= loss < _NEAR_OVERFLOW:
        # inexact, or near the subnormals (terms lose bits there) or overflow
        return _decimal_distillation_row(teacher, student, t)
    return loss


def _quotients(heads, tails, r_hi, r_lo):
    """The probabilities (head + tail) / (1 + R) of a lane as double-doubles, None for
    one near or below the subnormals (where Dekker's products are not exact)."""
    s_hi, s_lo = two_sum(1.0, r_hi)
    s_lo += r_lo
    return [dd_div(head, tail, s_hi, s_lo) if head > _DD_NORMAL else None
            for head, tail in zip(heads, tails)]


def _decimal_distillation_row(teacher, student, t):
    """t^2 KL of two rows in decimal arithmetic, as the sum of the terms p_i phi(y_i) >= 0
    of _distillation_row, with a bound on its error that decimal_value settles on.

    Each row is taken relative to its own largest logit v_j: w_i = (v_i - v_j) / t <= 0,
    lambda = ln(1 + sum_{i != j} e^w_i) and log p_i = w_i - lambda (for the student,
    log q_i likewise), y_i = log p_i - log q_i. Every error is then relative to the
    logarithms of the probabilities themselves, never to the size of the logits: the
    class that is the largest of both rows has y = lambda_s - lambda_t, as accurate as
    the two lambdas even where it is 1e-300 (a near one-hot pair), and a row of logits
    near 1e308 needs no more digits than one near 1. The bound, with u = 10**(1 - P) at
    P digits and an exponential of an argument below -2.4e6 lost to decimal's range
    (an absolute error below 10**Etiny, added per term):

    * w_i: relative error 1.01 u; R = sum_{i != j} e^w_i: relative error u (1.02 W + n),
      W the largest |w_i| above -2.4e6; lambda = ln1p(R): R / (1 + R) <= lambda carries
      that into lambda with a factor at most lambda, and ln1p rounds within (2P + 23) u;
    * e_i, the error of y_i, from those of w_i, lambda and two subtractions; delta_p,
      delta_q, the relative errors of p_i = e^(log p_i) and q_i, the errors of their
      logarithms plus u;
    * p_i |phi(y_i + e_i) - phi(y_i)| <= e_i (|p_i - q_i| + 1.04 q_i e_i) for e_i <= 1/100
      (phi'(y) = 1 - e^-y and p_i e^-y_i = q_i), or <= e_i p_i where y_i - e_i >= 0
      (|phi'| <= 1 there); any other e_i asks for more digits;
    * the term, phi (rounded within (2P + 200) u) times p_i, or q_i - p_i + p_i y_i below
      y_i = -1 (e^-y_i may be beyond decimal's range), with the errors of p_i and q_i;
      the sum of n terms >= 0 within (n + 2) u.
    """
    if teacher == student:
        return 0.0  # p = q: exactly 0 (a bound on the digits would never reach it)
    if any(s == -math.inf and a != -math.inf for a, s in zip(teacher, student)):
        return math.inf  # q_i = 0 where p_i > 0
    D = decimal.Decimal
    lost = D("-2.4e6")  # e^w for w below this is below decimal's smallest number

    def ln1p(r):
        if r >= D("0.1"):
            return (1 + r).ln()
        total, power, k = D(0), r, 1
        while True:  # r - r^2/2 + r^3/3 - ...: terms shrink tenfold at least
            term = power / k
            total += term if k % 2 else -term
            if abs(term) <= abs(total).scaleb(-decimal.getcontext().prec - 1):
                return total
            power, k = power * r, k + 1

    def phi(y):  # e^-y - 1 + y >= 0
        if abs(y) >= D("0.25"):
            return (-y).exp() - 1 + y
        total, term, k = D(0), y * y / 2, 2
        while term:  # sum_{k >= 2} (-y)^k / k!
            total += term
            if abs(term) <= total.scaleb(-decimal.getcontext().prec - 1):
                break
            k += 1
            term = -term * y / k
        return total

    def log_probabilities(row, temperature, u, precision):
        """log p_i of a row and the bound on each one's error."""
        j = max(range(len(row)), key=row.__getitem__)  # finite: the row has a finite entry
        top = D(row[j])
        w = [(D(v) - top) / temperature for v in row]
        lam = ln1p(sum(v.exp() for i, v in enumerate(w) if i != j))
        widest = max((-v for v in w if v.is_finite() and v > lost), default=D(0))
        lam_error = u * lam * (D("1.02") * widest + len(w) + 2 * precision + 25)
        logs = [v - lam for v in w]
        return logs, [u * (D("1.01") * abs(v) + abs(g) / 2) + lam_error if v.is_finite() else D(0)
                      for v, g in zip(w, logs)]

    def evaluate():
        context = decimal.getcontext()
        precision = context.prec
        u = D(1).scaleb(1 - precision)
        temperature = D(t)
        log_p, p_errors = log_probabilities(teacher, temperature, u, precision)
        log_q, q_errors = log_probabilities(student, temperature, u, precision)
        n = len(log_p)
        underflow = D(1).scaleb(context.Etiny())
        kl = bound = D(0)
        for a, a_error, b, b_error in zip(log_p, p_errors, log_q, q_errors):
            q = b.exp()
            delta_q = b_error * D("1.01") + u
            if a.is_infinite():  # p_i = 0: the term is q_i
                kl += q
                bound += delta_q * q + underflow
                continue
            p = a.exp()
            delta_p = a_error * D("1.01") + u
            y = a - b
            e = a_error + b_error + u * abs(y)
            if e <= D("0.01"):
                bound += e * (abs(p - q) + D("1.02") * (delta_p * p + delta_q * q) + D("1.04") * q * e)
            elif y >= e:
                bound += e * p * (1 + delta_p)
            else:
                return kl, D("Infinity")  # beyond the bound's reach: more digits
            if y < -1:
                kl += q - p + p * y
                bound += delta_q * q + delta_p * p * (1 + abs(y)) + 2 * u * (q + p + p * abs(y))
            else:
                term = p * phi(y)
                kl += term
                bound += (delta_p + (2 * precision + 200) * u) * term
            bound += underflow * (2 + abs(y))
        bound += kl * (n + 2) * u * D("1.01")
        square = temperature * temperature
        # decimal_value's acceptance: 18 digits above the error at these digits
        return kl * square, (bound + kl * u) * square * D("1.01") * D(1).scaleb(precision)

    loss = decimal_value(evaluate)
    return loss if loss > 0.0 else 0.0  # a KL is >= 0: a negative residue is rounding, not a sign


def distillation_loss(student_logits, teacher_logits, temperature):
    """Knowledge-distillation loss T^2 KL(softmax(t/T) || softmax(s/T)).

    KL(p || q) = sum_i p_i (log p_i - log q_i), from the teacher's distribution
    p = softmax(teacher_logits / T) to the student's q = softmax(student_logits / T); the
    factor T^2 (always applied, T = 1 included) keeps the gradients' scale independent of
    T (Hinton et al., 2015). Exactly:

    * (C,) logits, one row: T^2 sum_i p_i (log p_i - log q_i), the sum over the classes.
      That is torch's ``kl_div(log_q, p, reduction="sum") * T**2``, and its "batchmean" of
      the row as a batch of one, shape (1, C); torch's "batchmean" of the 1-D tensor itself
      divides by its first dimension, C, and is C times smaller.
    * (N, C) logits: (T^2 / N) sum_n sum_i p_ni (log p_ni - log q_ni), the sum over classes
      and batch divided by the batch size N (not by N C), which is torch's
      ``kl_div(log_q, p, reduction="batchmean") * T**2``; each row is computed as above
      (within a few ULPs) and their exact sum divided by N.

    Terms with p_i = 0 contribute 0; q_i = 0 where p_i > 0 gives +inf.

    The naive sum cancels badly when the student is close to the teacher (the KL is
    then of second order in their difference); the sum is rewritten as one of terms
    >= 0, so even a tiny KL is within a few ULPs:

    >>> distillation_loss([0.0, 1e-8], [0.0, 0.0], temperature=1.0)  # ~ (1e-8)^2 / 8
    1.25e-17
    >>> distillation_loss([3.0, -1.0], [3.0, -1.0], temperature=2.0)
    0.0

    Raises ValueError for shapes that differ or are not (C,) / (N, C), and for a
    temperature that is not finite and > 0.
    """
    function = "distillation_loss"
    t = check_temperature(temperature, function)
    shape, student = to_array(student_logits, function, "student_logits")
    teacher_shape, teacher = to_array(teacher_logits, function, "teacher_logits")
    if teacher_shape != shape:
        raise ValueError(
            f"{function}(): student_logits and teacher_logits must have the same shape, "
            f"got {shape} and {teacher_shape}")
    if len(shape) not in (1, 2) or shape[-1] == 0:
        raise ValueError(f"{function}(): logits must have shape (C,) or (N, C) with C >= 1, got {shape}")
    classes = shape[-1]
    losses = [_distillation_row(teacher[i:i + classes], student[i:i + classes], t)
              for i in range(0, len(student), classes)]
    if len(shape) == 1:
        return losses[0]
    return _total(losses) / len(losses) if losses else math.nan

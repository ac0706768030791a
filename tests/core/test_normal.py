"""ndtr and probit of the core against mpmath: accuracy in both tails and the centre,
exact values at the extremes, special values, bad input, and the inverse relation.

The truths: Phi(x) = erfc(-x/sqrt 2)/2 with enough extra bits for the x**2 amplification
of the argument's rounding; probit by Newton's method in mpmath, on log Phi in the lower
tail (so that subnormal p work) and on Phi - 1/2 with p - 1/2 exact near the centre.
"""

import math

import mpmath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refact import ndtr, ndtri, probit

INF, NAN = math.inf, math.nan
PREC = 256
EXAMPLES = settings(max_examples=300, derandomize=True, deadline=None)
NDTR_BOUND = 0.6  # ULPs; see ndtr's docstring
PROBIT_BOUND = 0.75  # the Newton step inherits 2**-55 from ndtr, amplified near |x| = 1/2


def true_ndtr(x):
    x = mpmath.mpf(x)
    with mpmath.workprec(PREC + 2 * int(abs(x) + 1).bit_length() + int(x * x).bit_length()):
        return mpmath.erfc(-x / mpmath.sqrt(2)) / 2


def true_probit(p):
    """The x with Phi(x) = p, for 0 < p < 1."""
    with mpmath.workprec(PREC + 64):
        if p > 0.5:
            return -true_probit(1.0 - p)  # 1 - p is exact; negate at this precision
        q = mpmath.mpf(p)
        if p > 0.25:  # Phi(x) - 1/2 = erf(x/sqrt2)/2 against p - 1/2 (exact)
            x = mpmath.sqrt(2) * mpmath.erfinv(2 * q - 1)
        else:  # log Phi(x) = log p, Newton from the asymptotic start
            x = -mpmath.sqrt(-2 * mpmath.log(q))
            for _ in range(200):
                phi_over_cdf = mpmath.npdf(x) / mpmath.ncdf(x)
                step = (mpmath.log(mpmath.ncdf(x)) - mpmath.log(q)) / phi_over_cdf
                x -= step
                if abs(step) < abs(x) * mpmath.mpf(2) ** -(PREC + 10):
                    break
        return x


# --- accuracy -----------------------------------------------------------------------------

@EXAMPLES
@given(x=st.floats(allow_nan=False, allow_infinity=False))
def test_ndtr_over_the_whole_float_range(x, mp64):
    y, t = ndtr(x), true_ndtr(x)
    assert mp64.ulp_error(y, t) <= NDTR_BOUND, (x, y, mpmath.nstr(t, 25))


@EXAMPLES
@given(x=st.floats(-39.0, 9.0) | st.floats(-38.5, -36.0) | st.floats(-1e-3, 1e-3))
def test_ndtr_tails_and_centre(x, mp64):
    y, t = ndtr(x), true_ndtr(x)
    assert mp64.ulp_error(y, t) <= NDTR_BOUND, (x, y, mpmath.nstr(t, 25))


def test_ndtr_at_the_seams(mp64):
    # The Mills-ratio table and its continued fraction meet at 4.03125; 8.3 and 38.5 are cut-offs.
    for e in (-38.5, -38.4674, -37.5, -8.3, -4.03125, -4.0, -1.0, -0.03125, 0.0, 0.03125,
              1.0, 4.03125, 8.2924, 8.3):
        for x in (math.nextafter(e, -INF), e, math.nextafter(e, INF)):
            assert mp64.ulp_error(ndtr(x), true_ndtr(x)) <= NDTR_BOUND, x


probabilities = (
    st.floats(0.0, 1.0, exclude_min=True, exclude_max=True)
    | st.floats(5e-324, 1e-280)
    | st.floats(0.49, 0.51)
    | st.floats(2.0**-53, 0.5).map(lambda q: 1.0 - q)
)


@EXAMPLES
@given(p=probabilities)
def test_probit_accuracy(p, mp64):
    y, t = probit(p), true_probit(p)
    assert mp64.ulp_error(y, t) <= PROBIT_BOUND, (p, y, mpmath.nstr(t, 25))


def test_probit_extremes(mp64):
    assert probit(1e-300) == -37.0470962993612 == mp64.nearest(true_probit(1e-300))
    for p in (5e-324, 1e-320, 2.0**-1022, 1e-100, 0.025, 0.5 - 2.0**-54, 0.5 + 2.0**-53,
              0.975, 1.0 - 2.0**-53):
        assert mp64.ulp_error(probit(p), true_probit(p)) <= PROBIT_BOUND, p
    assert probit(0.5) == 0.0
    assert probit(0.0) == -INF and probit(-0.0) == -INF and probit(1.0) == INF
    assert math.isnan(probit(NAN))


def test_ndtr_extremes(mp64):
    assert ndtr(-40.0) == 0.0 and ndtr(-1e308) == 0.0 and ndtr(-INF) == 0.0
    assert ndtr(-38.4) > 0.0  # about 5e-323: subnormal, not flushed
    assert ndtr(-37.5) == mp64.nearest(true_ndtr(-37.5))
    assert ndtr(0.0) == ndtr(-0.0) == 0.5
    assert ndtr(8.3) == 1.0 and ndtr(INF) == 1.0 and ndtr(1e308) == 1.0
    assert ndtr(8.0) < 1.0  # 1 - 6.2e-16
    assert math.isnan(ndtr(NAN))


def test_the_textbook_formula_would_not_do(mp64):
    # Why ndtr has its own tail: erfc(-x/sqrt 2)/2 amplifies the rounding of x/sqrt 2 by x**2.
    for x, naive_error in ((-37.0, 800), (-20.0, 250), (-10.0, 40)):
        naive = math.erfc(-x / math.sqrt(2.0)) / 2.0
        assert mp64.ulp_error(naive, true_ndtr(x)) > naive_error
        assert mp64.ulp_error(ndtr(x), true_ndtr(x)) <= 0.5


# --- properties ---------------------------------------------------------------------------

@EXAMPLES
@given(x=st.floats(-38.0, 8.0))
def test_probit_inverts_ndtr(x):
    # p = ndtr(x) carries 0.6 ULP; probit scales a change of p by 1/phi(x) = R(|x|) / p.
    p = ndtr(x)
    if 0.0 < p < 1.0:
        phi = math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        assert abs(probit(p) - x) <= 0.6 * math.ulp(p) / phi + 2 * math.ulp(x)


@EXAMPLES
@given(x=st.floats(-8.0, 8.0))
def test_ndtr_symmetry(x):
    # ndtr(-x) = 1 - ndtr(x): for x <= 0, 1 - ndtr(-x) with ndtr(-x) >= 1/2 is exact.
    x = -abs(x)
    assert abs(ndtr(x) - (1.0 - ndtr(-x))) <= 2.0**-53


@EXAMPLES
@given(p=st.floats(0.5, 1.0, exclude_max=True))
def test_probit_is_antisymmetric(p):
    assert probit(1.0 - p) == -probit(p)


@EXAMPLES
@given(data=st.data())
def test_monotone(data):
    x, y = sorted(data.draw(st.lists(st.floats(-40.0, 10.0), min_size=2, max_size=2)))
    assert ndtr(x) <= ndtr(y)
    p, q = sorted(data.draw(st.lists(st.floats(0.0, 1.0), min_size=2, max_size=2)))
    assert probit(p) <= probit(q)


# --- input handling -----------------------------------------------------------------------

def test_alias():
    assert ndtri is probit


def test_nesting_is_kept():
    assert ndtr(((0, -1.0), [1.0, 2])) == [[0.5, ndtr(-1.0)], [ndtr(1.0), ndtr(2.0)]]
    assert probit([[0.5], [0.975]]) == [[0.0], [probit(0.975)]]
    assert ndtr([]) == [] and probit(()) == []


@pytest.mark.parametrize("p", [-0.1, 1.5, INF, -INF, -5e-324])
def test_probit_outside_the_domain_is_an_error(p):
    with pytest.raises(ValueError, match=r"probit\(\): p = .* is outside \[0, 1\]"):
        probit(p)


def test_bad_input():
    with pytest.raises(TypeError, match=r"ndtr\(\): x must be a real number, not str"):
        ndtr("0")
    with pytest.raises(TypeError, match=r"probit\(\): p at index \[1\] must be a real number"):
        probit([0.5, None])
    with pytest.raises(ValueError, match=r"ndtr\(\): x is ragged"):
        ndtr([[1.0], [1.0, 2.0]])
    with pytest.raises(ValueError, match=r"probit\(\): p = 2"):
        probit([0.5, 2])

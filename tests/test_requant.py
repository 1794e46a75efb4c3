"""Requantization: multiplier choice and the exact integer rounding rule.

The references are exact rationals (fractions.Fraction), so the tolerance is the one the
arithmetic defines: requantize is round-half-up of acc * mult / 2^shift, exactly, then the
clamp; quantize_multiplier is within half a unit of the last place, 2^-(shift+1).
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.ir.requant import MAX_SHIFT, add_multipliers, add_requantize, quantize_multiplier, requantize

ACC = st.integers(-(2**31), 2**31 - 1)
MULT = st.integers(0, 2**31 - 1)
SHIFT = st.integers(1, MAX_SHIFT)


def round_half_up(value: Fraction) -> int:
    """Nearest integer, ties toward +infinity (docs/integer-arithmetic.md, "Requantization")."""
    return math.floor(value + Fraction(1, 2))


def clamp(value: int, bits: int) -> int:
    return min(max(value, 0), 2**bits - 1)


@settings(max_examples=2000, deadline=None)
@given(acc=ACC, mult=MULT, shift=SHIFT, bits=st.sampled_from([2, 4, 8]))
@example(acc=2**31 - 1, mult=2**31 - 1, shift=1, bits=8)
@example(acc=-(2**31), mult=2**31 - 1, shift=62, bits=8)
@example(acc=-(2**31), mult=2**31 - 1, shift=1, bits=8)
@example(acc=1, mult=1, shift=1, bits=2)  # exactly 0.5: rounds up to 1
@example(acc=-1, mult=1, shift=1, bits=2)  # exactly -0.5: rounds up to 0
@example(acc=3, mult=2**30, shift=31, bits=8)  # 1.5 -> 2
def test_requantize_is_round_half_up_of_the_exact_product(acc, mult, shift, bits):
    y = int(requantize(np.array([acc]), np.array([mult]), np.array([shift]), bits)[0])
    assert y == clamp(round_half_up(Fraction(acc * mult, 2**shift)), bits)


@settings(max_examples=1000, deadline=None)
@given(mult=st.integers(2**30, 2**31 - 1), shift=st.integers(20, MAX_SHIFT), bits=st.sampled_from([2, 4, 8]),
       data=st.data())
def test_requantize_in_range_values_are_exact(mult, shift, bits, data):
    """Accumulators whose result lands inside the output range (no clamp), where an error of
    a single unit would show: the value is the rounded rational, ties included."""
    lo, hi = -(2**shift // mult), (2**bits - 1) * 2**shift // mult  # acc * mult / 2^shift in [-1, 2^b - 1]
    acc = data.draw(st.integers(max(lo, -(2**31)), min(hi, 2**31 - 1)))
    exact = round_half_up(Fraction(acc * mult, 2**shift))
    y = int(requantize(np.array([acc]), np.array([mult]), np.array([shift]), bits)[0])
    assert y == clamp(exact, bits)


def test_per_channel_arrays_use_each_channels_own_multiplier_and_shift():
    acc = np.array([[5, 5, 5], [-7, 100, 2**31 - 1]])
    mult = np.array([2**30, 3 * 2**29, 2**31 - 1])
    shift = np.array([31, 32, 62])
    y = requantize(acc, mult, shift, 8)
    expected = [[clamp(round_half_up(Fraction(int(a) * int(m), 2 ** int(s))), 8)
                 for a, m, s in zip(row, mult, shift)] for row in acc]
    assert y.tolist() == expected


@settings(max_examples=1000, deadline=None)
@given(m=st.floats(2**-40, 2**29, allow_subnormal=False))
def test_multiplier_is_within_half_a_unit_of_the_last_place(m):
    mult, shift = quantize_multiplier(m)
    assert 1 <= shift <= MAX_SHIFT and 0 <= mult < 2**31
    assert abs(Fraction(mult, 2**shift) - Fraction(m)) <= Fraction(1, 2 ** (shift + 1))
    if shift < MAX_SHIFT:  # 31 significant bits, unless the shift hit its ceiling
        assert 2**30 <= mult < 2**31
        assert shift == 30 - math.floor(math.log2(m)) or (mult == 2**30 and shift == 29 - math.floor(math.log2(m)))


def test_rounding_is_half_up_exactly():
    # m = 0.5: acc 1 -> 0.5 rounds to 1, acc -1 -> -0.5 rounds to 0 (ties toward +inf), acc 3 -> 2
    mult, shift = quantize_multiplier(0.5)
    y = requantize(np.array([1, -1, 3, 5]), np.full(4, mult), np.full(4, shift), 8)
    assert y.tolist() == [1, 0, 2, 3]


def test_saturates_to_output_range():
    mult, shift = quantize_multiplier(1.0)
    assert requantize(np.array([-5, 3, 4, 99]), np.full(4, mult), np.full(4, shift), 2).tolist() == [0, 3, 3, 3]


def test_zero_and_unrepresentable_multipliers():
    assert quantize_multiplier(0.0) == (0, 1)
    assert quantize_multiplier(1e-30) == (0, 62)
    assert quantize_multiplier(2.0**-40) == (round(2.0**22), 62)  # shift capped: fewer significant bits
    with pytest.raises(HarnessError):
        quantize_multiplier(2.0**31)
    with pytest.raises(HarnessError):
        quantize_multiplier(-1.0)


def test_logits_pass_through_unchanged():
    acc = np.array([-(2**31), 5, 2**31 - 1])
    assert requantize(acc, np.zeros(3), np.ones(3), 32).tolist() == acc.tolist()


# -- add --------------------------------------------------------------------------------------

RATIO = st.floats(0, 2**29, allow_subnormal=False)


@settings(max_examples=1000, deadline=None)
@given(r1=RATIO, r2=RATIO)
def test_add_multipliers_follow_the_documented_choice(r1, r2):
    """docs "add": e = floor(log2 max(r1, r2)), sh = 30 - e (at most 62), m_i = round(r_i 2^sh);
    if the larger rounds to 2^31, sh -= 1. Each m_i is within half a unit of r_i 2^sh."""
    m1, m2, sh = add_multipliers(r1, r2)
    largest = max(r1, r2)
    if largest == 0:
        assert (m1, m2, sh) == (0, 0, 1)
        return
    expected = min(30 - math.floor(math.log2(largest)), MAX_SHIFT)
    assert sh in (expected, expected - 1)
    assert (sh == expected - 1) == (round(Fraction(largest) * 2**expected) >= 2**31)
    for m, r in ((m1, r1), (m2, r2)):
        assert 0 <= m < 2**31
        assert abs(m - Fraction(r) * 2**sh) <= Fraction(1, 2)


@settings(max_examples=1000, deadline=None)
@given(x1=st.integers(0, 255), z1=st.integers(0, 255), x2=st.integers(0, 255), z2=st.integers(0, 255),
       m1=MULT, m2=MULT, sh=SHIFT, zero_point=st.integers(0, 255), bits=st.sampled_from([2, 4, 8]))
@example(x1=255, z1=0, x2=255, z2=0, m1=2**31 - 1, m2=2**31 - 1, sh=62, zero_point=0, bits=8)
@example(x1=0, z1=255, x2=0, z2=255, m1=2**31 - 1, m2=2**31 - 1, sh=1, zero_point=255, bits=8)
@example(x1=1, z1=0, x2=0, z2=0, m1=1, m2=0, sh=1, zero_point=0, bits=2)  # exactly 0.5 -> 1
def test_add_requantize_is_round_half_up_of_the_exact_sum(x1, z1, x2, z2, m1, m2, sh, zero_point, bits):
    y = int(add_requantize(np.array([x1]), -z1, np.array([x2]), -z2, np.array([m1, m2]), sh, zero_point, bits)[0])
    exact = Fraction((x1 - z1) * m1 + (x2 - z2) * m2, 2**sh)
    assert y == clamp(round_half_up(exact) + zero_point, bits)

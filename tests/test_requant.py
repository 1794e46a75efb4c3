"""Requantization: multiplier choice and the exact integer rounding rule."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.ir.requant import quantize_multiplier, requantize


@settings(max_examples=500, deadline=None)
@given(m=st.floats(1e-9, 1e6), acc=st.integers(-(2**31) + 1, 2**31 - 1), bits=st.sampled_from([2, 4, 8]))
def test_requantize_matches_float_within_one_unit(m, acc, bits):
    mult, shift = quantize_multiplier(m)
    assert 0 <= mult < 2**31 and 1 <= shift <= 62
    y = int(requantize(np.array([acc]), np.array([mult]), np.array([shift]), bits)[0])
    expected = min(max(acc * m, 0.0), 2**bits - 1)
    assert abs(y - expected) <= 1.0


@settings(max_examples=300, deadline=None)
@given(m=st.floats(2**-30, 2**29))
def test_multiplier_has_31_significant_bits(m):
    mult, shift = quantize_multiplier(m)
    assert 2**30 <= mult < 2**31
    assert math.isclose(mult / 2**shift, m, rel_tol=2**-30)


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
    with pytest.raises(HarnessError):
        quantize_multiplier(2.0**31)
    with pytest.raises(HarnessError):
        quantize_multiplier(-1.0)


def test_logits_pass_through_unchanged():
    acc = np.array([-(2**31), 5, 2**31 - 1])
    assert requantize(acc, np.zeros(3), np.ones(3), 32).tolist() == acc.tolist()

"""Packing round-trips and the exact bit layout of docs/integer-arithmetic.md."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.ir.packing import BITS, pack, row_bytes, unpack, value_range


@st.composite
def tensors(draw):
    bits = draw(st.sampled_from(BITS))
    signed = draw(st.booleans())
    lo, hi = value_range(bits, signed)
    rows = draw(st.integers(1, 5))
    channels = draw(st.integers(1, 37))
    values = draw(st.lists(st.integers(lo, hi), min_size=rows * channels, max_size=rows * channels))
    return np.array(values).reshape(rows, channels), bits, signed


@settings(max_examples=300, deadline=None)
@given(tensors())
def test_pack_unpack_round_trip(case):
    values, bits, signed = case
    packed = pack(values, bits, signed)
    assert packed.dtype == np.uint8
    assert packed.shape == (values.shape[0], row_bytes(values.shape[1], bits))
    np.testing.assert_array_equal(unpack(packed, bits, values.shape[1], signed), values)


def test_two_bit_layout_is_lsb_first_and_rows_are_byte_aligned():
    values = np.array([[1, 2, 3, 0, 1], [3, 3, 3, 3, 3]])
    packed = pack(values, 2, signed=False)
    # row 0: values 0..3 -> 0b00_11_10_01, value 4 -> low bits of byte 1, rest zero
    assert packed.tolist() == [[0b00111001, 0b00000001], [0xFF, 0b00000011]]


def test_signed_four_bit_is_twos_complement():
    packed = pack(np.array([[-1, 7, -8]]), 4, signed=True)
    assert packed.tolist() == [[0x7F, 0x08]]


def test_out_of_range_values_are_refused():
    try:
        pack(np.array([[4]]), 2, signed=False)
    except ValueError as error:
        assert "range" in str(error)
    else:
        raise AssertionError("4 does not fit in 2 unsigned bits")

"""Memory sizes: binary units, exact fractions, clear errors for anything else."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import HarnessError
from harness.units import format_size, parse_size


@pytest.mark.parametrize("text, expected", [
    ("2MB", 2 * 1024 * 1024),
    ("512kB", 512 * 1024),
    ("128 KiB", 128 * 1024),
    ("512kb", 512 * 1024),       # case does not matter: bytes, never bits
    (" 1 M ", 1024 * 1024),
    ("1.5MB", 3 * 512 * 1024),   # exact, no float rounding
    ("0.5 kB", 512),
    ("4096", 4096),
    ("4096B", 4096),
    ("1GiB", 1024**3),
    ("0", 0),
    (4096, 4096),
    (0, 0),
])
def test_parse_size_accepts_binary_units(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("value, message", [
    (-1, "negative"),
    ("-1kB", "not a memory size"),
    ("two MB", "not a memory size"),
    ("", "not a memory size"),
    ("1e3", "not a memory size"),
    ("2 XB", "unknown unit"),
    ("2 Mbit", "unknown unit"),
    ("1.0001kB", "not a whole number of bytes"),
    (1.5, "not a memory size"),
    (True, "not a memory size"),
    (None, "not a memory size"),
])
def test_parse_size_rejects_garbage_with_a_clear_error(value, message):
    with pytest.raises(HarnessError, match=message):
        parse_size(value)


@given(st.integers(0, 2**40), st.sampled_from([("kB", 1024), ("MB", 1024**2), ("KiB", 1024), ("B", 1)]))
def test_parse_size_scales_by_the_unit(number, unit):
    name, factor = unit
    assert parse_size(f"{number}{name}") == number * factor


@pytest.mark.parametrize("n_bytes, text", [
    (2 * 1024 * 1024, "2 MB"),
    (512 * 1024, "512 kB"),
    (1536, "1.5 kB"),
    (1000, "1000 B"),
    (0, "0 B"),
])
def test_format_size(n_bytes, text):
    assert format_size(n_bytes) == text


@given(st.integers(0, 2**34))
def test_format_size_round_trips_exact_sizes(n_bytes):
    text = format_size(n_bytes)
    if "." not in text:
        assert parse_size(text) == n_bytes

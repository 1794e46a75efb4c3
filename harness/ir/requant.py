"""Per-channel integer requantization: choosing (mult, shift) and applying them exactly."""
from __future__ import annotations

import math

import numpy as np

from harness.errors import HarnessError

MAX_SHIFT = 62


def quantize_multiplier(m: float) -> tuple[int, int]:
    """Represent a real rescale m >= 0 as mult * 2^-shift (docs/integer-arithmetic.md)."""
    if m < 0 or not math.isfinite(m):
        raise HarnessError(f"requantization multiplier must be finite and >= 0, got {m}")
    if m == 0:
        return 0, 1
    shift = 30 - math.floor(math.log2(m))
    mult = round(m * 2.0**shift)
    if mult >= 1 << 31:
        mult, shift = 1 << 30, shift - 1
    if shift > MAX_SHIFT:
        shift = MAX_SHIFT
        mult = round(m * 2.0**MAX_SHIFT)
    if shift < 1:
        raise HarnessError(f"requantization multiplier {m:g} is too large to represent (needs shift < 1)")
    return int(mult), int(shift)


def quantize_multipliers(ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector form of quantize_multiplier: int32 mult and int8 shift arrays."""
    pairs = [quantize_multiplier(float(m)) for m in np.asarray(ms, dtype=np.float64).ravel()]
    mult = np.array([p[0] for p in pairs], dtype=np.int64).astype(np.int32)
    shift = np.array([p[1] for p in pairs], dtype=np.int8)
    return mult, shift


def requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, bits: int) -> np.ndarray:
    """y = clamp((acc*mult + 2^(shift-1)) >> shift, 0, 2^bits-1), channels on the last axis."""
    if bits == 32:
        return np.asarray(acc, dtype=np.int32)
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    prod = acc * np.asarray(mult, dtype=np.int64) + (np.int64(1) << (shift - 1))
    y = prod >> shift
    return np.clip(y, 0, (1 << bits) - 1).astype(np.int32)


def add_multipliers(r1: float, r2: float) -> tuple[int, int, int]:
    """(m1, m2, shift) of an add whose inputs rescale by r1, r2 >= 0 to the output
    (docs/integer-arithmetic.md, "add"): one shared shift, both multipliers below 2^31."""
    for r in (r1, r2):
        if r < 0 or not math.isfinite(r):
            raise HarnessError(f"add rescale must be finite and >= 0, got {r}")
    largest = max(r1, r2)
    if largest == 0:
        return 0, 0, 1
    shift = min(30 - math.floor(math.log2(largest)), MAX_SHIFT)
    if round(largest * 2.0**shift) >= 1 << 31:
        shift -= 1
    if shift < 1:
        raise HarnessError(f"add rescale {largest:g} is too large to represent (needs shift < 1)")
    return round(r1 * 2.0**shift), round(r2 * 2.0**shift), shift


def add_requantize(x1: np.ndarray, off1: int, x2: np.ndarray, off2: int, mult: np.ndarray, shift: int,
                   zero_point: int, bits: int) -> np.ndarray:
    """clamp(floor(((x1+off1)*m1 + (x2+off2)*m2 + 2^(shift-1)) / 2^shift) + zero_point, 0, 2^bits-1)."""
    acc = (np.asarray(x1, np.int64) + off1) * np.int64(mult[0]) + (np.asarray(x2, np.int64) + off2) * np.int64(mult[1])
    y = (acc + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    return np.clip(y + zero_point, 0, (1 << bits) - 1).astype(np.int32)

"""Sub-byte packing along the channel dimension (docs/integer-arithmetic.md, "Packing")."""
from __future__ import annotations

import numpy as np

BITS = (2, 4, 8)


def row_bytes(channels: int, bits: int) -> int:
    """Bytes one row of `channels` values takes; every row starts on a byte boundary."""
    return (channels * bits + 7) // 8


def value_range(bits: int, signed: bool) -> tuple[int, int]:
    """The storable range of a `bits`-bit value."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits}")


def pack(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """Pack integer `values` of shape [..., C] into uint8 rows of shape [..., row_bytes(C, bits)]."""
    _check_bits(bits)
    values = np.asarray(values, dtype=np.int64)
    lo, hi = value_range(bits, signed)
    if values.size and (values.min() < lo or values.max() > hi):
        raise ValueError(f"values outside the {bits}-bit {'signed' if signed else 'unsigned'} range [{lo}, {hi}]")
    channels = values.shape[-1]
    per_byte = 8 // bits
    padded_c = row_bytes(channels, bits) * per_byte
    codes = (values & ((1 << bits) - 1)).astype(np.uint8)
    pad = [(0, 0)] * (values.ndim - 1) + [(0, padded_c - channels)]
    codes = np.pad(codes, pad).reshape(*values.shape[:-1], -1, per_byte)
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(codes << shifts, axis=-1).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, channels: int, signed: bool) -> np.ndarray:
    """Inverse of `pack`: uint8 rows [..., R] -> int32 values [..., channels]."""
    _check_bits(bits)
    packed = np.asarray(packed, dtype=np.uint8)
    per_byte = 8 // bits
    shifts = (np.arange(per_byte, dtype=np.uint8) * bits).astype(np.uint8)
    codes = (packed[..., None] >> shifts) & np.uint8((1 << bits) - 1)
    codes = codes.reshape(*packed.shape[:-1], -1)[..., :channels].astype(np.int32)
    if signed:
        codes = np.where(codes >= (1 << (bits - 1)), codes - (1 << bits), codes)
    return codes.astype(np.int32)

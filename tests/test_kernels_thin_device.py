"""The thin-input pointwise path of the Cortex-M7 kernels (mpq_pointwise_m7.c: 8-bit inputs of 4 or
8 channels, a pixel's column in registers) on the --board target, through codegen -> build -> the
device: both input widths, 8- and 4-bit outputs, any weight bits, an input zero-point, and the
layers it must leave to the matrix engine (2-bit and int32 outputs, an odd channel count, a shift
of 32 or less, 6 input channels). One firmware image (the shipped build: the wrappers pick the
_m7 kernels)."""
import pytest
from support.device_checks import device_mismatches
from support.thin_pointwise import ENGINE, THIN

pytestmark = pytest.mark.device


def test_thin_inputs_are_bit_exact_on_the_device(device_session):
    cases = THIN | ENGINE
    with device_session(list(cases.values())) as device:
        mismatches = device_mismatches(device, cases)
    assert not mismatches, "; ".join(mismatches)

"""Mixed-precision quantization harness: policy -> QAT -> integer graph -> firmware -> measurement."""

__version__ = "0.1.0"

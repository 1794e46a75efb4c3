"""Bit-width search: rule-based (memory_driven) and reinforcement learning with measured latency (haq)."""

"""The integer contract: graph, packing, requantization, reference, arena planner, memory model."""

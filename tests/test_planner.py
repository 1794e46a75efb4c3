"""The arena planner: buffers live at the same time never share bytes, checked by brute force."""
import numpy as np
import pytest

from harness.errors import HarnessError
from harness.ir.graph import Graph, Layer, Tensor
from harness.ir.planner import layer_scratch_bytes, plan_arena, simple_bound
from harness.ir.random_graphs import random_chain_graph


def random_dag(seed: int) -> Graph:
    """Layers reading any earlier tensor: tensors with several consumers and dead branches.
    Only the structure matters to the planner, so the layers carry no arrays."""
    rng = np.random.default_rng(seed)
    tensors = {"x": Tensor("x", (int(rng.integers(1, 9)), int(rng.integers(1, 9)), 3), 8, 1.0)}
    layers = []
    for k in range(1, int(rng.integers(2, 12))):
        src = str(rng.choice(list(tensors)))
        out = Tensor(f"t{k}", (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 17))),
                     int(rng.choice([2, 4, 8])), 1.0)
        tensors[out.name] = out
        op, kernel = [("conv2d", (3, 3)), ("conv2d", (1, 1)), ("depthwise_conv2d", (3, 3)),
                      ("global_avg_pool", (1, 1))][int(rng.integers(4))]
        layers.append(Layer(f"l{k}", op, src, out.name, kernel))
    return Graph(f"dag{seed}", tensors, layers, "x", layers[-1].output)


def live_sets(graph: Graph) -> list[set[tuple[str, str]]]:
    """Per layer step, what must be in memory, computed straight from the definition:
    a tensor (the network input too) from the step producing it to its last reader (the
    output to the end); a layer's scratch during that layer."""
    produced = {graph.input: 0}
    for k, layer in enumerate(graph.layers):
        produced.setdefault(layer.output, k)
    steps = []
    for k, layer in enumerate(graph.layers):
        live = {("scratch", layer.name)} if layer_scratch_bytes(graph, layer) else set()
        for name, born in produced.items():
            readers = [j for j, other in enumerate(graph.layers) if other.input == name]
            dies = len(graph.layers) if name == graph.output else max(readers + [born])
            if born <= k <= dies:
                live.add(("tensor", name))
        steps.append(live)
    return steps


def extent(graph: Graph, plan, key: tuple[str, str]) -> tuple[int, int]:
    kind, name = key
    if kind == "scratch":
        start = plan.scratch_offsets[name]
        return start, start + plan.scratch_sizes[name]
    start = plan.offsets[name]
    return start, start + graph.tensors[name].nbytes


def assert_valid_plan(graph: Graph) -> None:
    plan = plan_arena(graph)
    assert plan.size % 8 == 0
    assert plan.size >= simple_bound(graph)
    for step, live in enumerate(live_sets(graph)):
        ranges = sorted(extent(graph, plan, key) for key in live)
        assert sum(b - a for a, b in ranges) <= plan.size
        for (a0, b0), (a1, b1) in zip(ranges, ranges[1:]):
            assert b0 <= a1, f"{graph.name}: buffers overlap at layer {step}: {ranges}"
        for a, b in ranges:
            assert a % 4 == 0 and b <= plan.size


@pytest.mark.parametrize("seed", range(40))
def test_chain_plans_never_overlap_live_buffers(seed):
    assert_valid_plan(random_chain_graph(seed, blocks=1 + seed % 6))


@pytest.mark.parametrize("seed", range(40))
def test_dag_plans_never_overlap_live_buffers(seed):
    assert_valid_plan(random_dag(seed))


def test_tensor_with_several_consumers_lives_until_the_last():
    # x -> a; a -> b; a -> c: a must survive b so c can read it, so a and b never share bytes
    t = {n: Tensor(n, (4, 4, 8), 8, 1.0) for n in "xabc"}
    layers = [Layer("la", "global_avg_pool", "x", "a"), Layer("lb", "global_avg_pool", "a", "b"),
              Layer("lc", "global_avg_pool", "a", "c")]
    plan = plan_arena(Graph("fan-out", t, layers, "x", "c"))
    a, b = plan.offsets["a"], plan.offsets["b"]
    assert abs(a - b) >= 128
    assert plan.size == 2 * 128  # x dies after la: a with b, then a with c, never more


def _reuses_input(graph: Graph, plan) -> bool:
    """Whether a tensor or scratch born after the input's last reader overlaps the input's bytes."""
    start, stop = extent(graph, plan, ("tensor", graph.input))
    last = max(k for k, layer in enumerate(graph.layers) if layer.input == graph.input)
    later = [("tensor", layer.output) for layer in graph.layers[last + 1:]]
    later += [("scratch", layer.name) for layer in graph.layers[last + 1:] if layer.name in plan.scratch_offsets]
    return any(a < stop and start < b for a, b in (extent(graph, plan, key) for key in later))


@pytest.mark.parametrize("seed", range(20))
def test_plan_says_whether_the_input_survives_a_run(seed):
    """input_survives is exactly "no buffer born after the input's last reader overlaps it"."""
    graph = random_chain_graph(seed, blocks=1 + seed % 6)
    plan = plan_arena(graph)
    assert plan.input_survives == (not _reuses_input(graph, plan))


def test_the_input_dies_after_its_last_consumer():
    """x (1 kB) -> a (1 kB) -> b (1 kB) -> c: with x dead after la, b takes x's bytes, so the
    arena holds two tensors, not three, and the input does not survive the run."""
    t = {n: Tensor(n, (4, 4, 64), 8, 1.0) for n in "xabc"}
    layers = [Layer("la", "global_avg_pool", "x", "a"), Layer("lb", "global_avg_pool", "a", "b"),
              Layer("lc", "global_avg_pool", "b", "c")]
    plan = plan_arena(Graph("chain", t, layers, "x", "c"))
    assert plan.size == 2 * 1024
    assert not plan.input_survives


def test_chain_plan_is_close_to_the_live_bytes_lower_bound():
    """The heuristic is good: within 25 % of max over steps of the bytes live at that step."""
    for seed in range(30):
        graph = random_chain_graph(seed, blocks=1 + seed % 6)
        plan = plan_arena(graph)
        bound = max(sum(stop - start for start, stop in (extent(graph, plan, key) for key in live))
                    for live in live_sets(graph))
        assert plan.size <= 1.25 * bound + 8


def test_plan_is_deterministic():
    graph = random_chain_graph(11, blocks=5)
    assert plan_arena(graph) == plan_arena(random_chain_graph(11, blocks=5))


def test_simple_bound_is_largest_layer_input_plus_output():
    graph = random_chain_graph(5)
    expected = max(graph.tensors[la.input].nbytes + graph.tensors[la.output].nbytes for la in graph.layers)
    assert simple_bound(graph) == expected


def test_layer_reading_an_unproduced_tensor_is_refused():
    t = {n: Tensor(n, (1, 1, 4), 8, 1.0) for n in "xyz"}
    graph = Graph("bad", t, [Layer("l", "global_avg_pool", "y", "z")], "x", "z")
    with pytest.raises(HarnessError, match="reads y before it is produced"):
        plan_arena(graph)

"""Measure a policy's firmware through the MLPerf Tiny front end (`harness measure --protocol
mlperf-tiny`, docs/mlperf-tiny.md): each input goes to the device as MLPerf Tiny's runner sends
it (db load / db), runs with `infer N W`, and its m-results must equal, string for string, the
host reference's output dequantized and printed as the device prints it.
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from harness.backends import open_link
from harness.boards import Board
from harness.build.firmware import BuildResult, build_graphs
from harness.build.mlperf_config import MlperfConfig, model_id_for, quantize_loaded
from harness.errors import HarnessError
from harness.ir import reference
from harness.ir.graph import Graph
from harness.link.mlperf import MlperfSession, expected_scores
from harness.policy import Policy

RANDOM_SEED = 0


def mlperf_config(policy: Policy, graph: Graph, model_id: str | None = None) -> MlperfConfig:
    return MlperfConfig(model_id_for(graph, model_id), policy.input)


def build_mlperf_firmware(graph: Graph, policy: Policy, board: Board, model_id: str | None = None) -> BuildResult:
    from harness.measure.run import check_predicted_memory

    check_predicted_memory(graph, policy, board)
    return build_graphs([graph], board, policy.hash, mlperf_config(policy, graph, model_id))


DEFAULT_RANDOM_INPUTS = 5


def loaded_inputs(graph: Graph, config: MlperfConfig, count: int | None,
                  data_dir: Path | None = None) -> tuple[list[bytes], list[int]]:
    """(raw inputs in the model's MLPerf Tiny format, labels): the first `count` of a sample
    folder's images (default all), or `count` seeded random inputs (default 5)."""
    shape = tuple(graph.tensors[graph.input].shape)
    if data_dir is not None:
        if config.input_format != "uint8":
            raise HarnessError(f"--data holds images; {config.model_id} takes {config.input_format} inputs")
        from harness.datasets.imagefolder import Preprocess, scan_sample_folder

        files = scan_sample_folder(data_dir)
        count = len(files) if count is None else count
        pixels = np.rint(files.images(shape, Preprocess())[:count] * 255.0).astype(np.uint8)  # images in [0, 1]
        return [image.tobytes() for image in pixels], [int(label) for label in files.labels[:count]]
    count = DEFAULT_RANDOM_INPUTS if count is None else count
    rng = np.random.default_rng(RANDOM_SEED)
    if config.input_format == "float32":
        low, high = config.input.low, config.input.high
        raws = [rng.uniform(low, high, size=shape).astype("<f4").tobytes() for _ in range(count)]
    else:
        raws = [rng.integers(0, 256, size=shape, dtype=np.uint8).tobytes() for _ in range(count)]
    return raws, [-1] * count


def host_scores(graph: Graph, config: MlperfConfig, raw: bytes) -> tuple[str, ...]:
    """The m-results the device must print for `raw`, from the host reference."""
    out = graph.tensors[graph.output]
    output = reference.predict(graph, quantize_loaded(raw, graph, config))
    window = np.frombuffer(raw, dtype="<f4") if config.scores_are_mse else None
    return expected_scores(output, out.scale, out.zero_point, window)


def run_session(session: MlperfSession, graph: Graph, config: MlperfConfig, raws: list[bytes], labels: list[int],
                runs: int = 1, warmups: int = 0) -> dict:
    """name, profile, then every input: load, infer, compare; the report (a JSON-able dict)."""
    name, (profile, model) = session.name(), session.profile()
    if model != config.model_id:
        raise HarnessError(f"DUT reports model {model}, the firmware was built as {config.model_id}")
    images = []
    for index, (raw, label) in enumerate(zip(raws, labels)):
        session.load(raw)
        result = session.infer(runs, warmups)
        expected = host_scores(graph, config, raw)
        scores = [float(v) for v in result.results]
        images.append({"index": index, "label": label, "results": list(result.results), "expected": list(expected),
                       "equal": tuple(result.results) == expected, "elapsed_us": result.elapsed_us,
                       "predicted": int(np.argmax(scores)) if len(scores) > 1 else None})
    scored = [image for image in images if image["label"] >= 0 and image["predicted"] is not None]
    per_run = [image["elapsed_us"] / runs for image in images]
    return {"dut_name": name, "profile": profile, "model": model, "runs": runs, "warmups": warmups,
            "images": len(images), "equal": sum(image["equal"] for image in images),
            "accuracy": sum(i["predicted"] == i["label"] for i in scored) / len(scored) if scored else None,
            "median_us_per_inference": statistics.median(per_run) if per_run else None,
            "per_image": images}


def measure_mlperf(policy: Policy, graph: Graph, board: Board, count: int | None, data_dir: Path | None = None,
                   runs: int = 1, warmups: int = 0, model_id: str | None = None) -> dict:
    """Build the MLPerf Tiny firmware, start it on `board` and run `count` inputs through it."""
    config = mlperf_config(policy, graph, model_id)
    build = build_mlperf_firmware(graph, policy, board, model_id)
    raws, labels = loaded_inputs(graph, config, count, data_dir)
    with open_link(board, build.elf_path) as link:
        with MlperfSession.open(link.url, baudrate=getattr(board.backend_settings, "baud", 115200)) as session:
            session.sync()
            try:
                report = run_session(session, graph, config, raws, labels, runs, warmups)
            except HarnessError as error:
                reason = link.failure()
                raise HarnessError(f"{link.description}: {reason} ({error})" if reason else str(error)) from None
    return {"policy": policy.name, "board": board.name, "elf": str(build.elf_path),
            "lap_us_meaning": board.counter.description, **report}

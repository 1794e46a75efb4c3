"""Options several subcommands share (this module registers no command of its own)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import HarnessError


def add_policy_and_board(parser: argparse.ArgumentParser, board_help: str = "board name") -> None:
    """POLICY, --board and the model source options of the commands that turn a policy into firmware."""
    from harness.boards import DEFAULT_BOARD

    parser.add_argument("policy", type=Path, help="policy.json")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"{board_help} (default {DEFAULT_BOARD})")
    add_model_source_options(parser)


LOCAL_FARM = "local"
LOCAL_FARM_BOARDS = 2


def add_farm_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--farm [ADDRESS] and --farm-boards N: run `what` on a Ray farm of boards (docs/farm.md)."""
    parser.add_argument("--farm", nargs="?", const=LOCAL_FARM, metavar="ADDRESS",
                        help=f"{what} on the boards of a Ray cluster at ADDRESS (`harness farm up` prints it), or "
                             f"without ADDRESS on a farm of --farm-boards emulated boards started for this command")
    parser.add_argument("--farm-boards", type=int, default=LOCAL_FARM_BOARDS, metavar="N",
                        help=f"boards of the farm started without an --farm ADDRESS, 1 .. 8 (default {LOCAL_FARM_BOARDS})")


def farm_pool(args: argparse.Namespace, board_name: str, console):
    """The context manager of the --farm pool of `board_name` boards (harness.farm.pool.open_pool)."""
    from harness.farm.cluster import import_ray

    if not 1 <= args.farm_boards <= 8:
        raise HarnessError(f"--farm-boards must be 1 .. 8, got {args.farm_boards}")
    if args.farm.endswith(".json"):
        raise HarnessError(f"--farm {args.farm}: that is a file, not a cluster address; give the policy before --farm")
    import_ray()
    from harness.farm.pool import open_pool

    address = None if args.farm == LOCAL_FARM else args.farm
    return open_pool(address, board_name, args.farm_boards, lambda line: console.print(line, highlight=False))


def add_model_source_options(parser: argparse.ArgumentParser) -> None:
    """--random-weights and --calibration: where a policy's weights come from when not trained
    here; and the data options."""
    add_data_options(parser)
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights with calibrated requantization: no training, no dataset; for latency "
                             "and memory only (flagged in every report)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="images to calibrate a policy's model.checkpoint or model.file post-training: an "
                             "ImageFolder (DIR/<class>/<image>), or for a model file also a sample folder (DIR/<name>_<label>.png) "
                             "(default: seeded random inputs)")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """--data and --preprocess: which dataset trains, calibrates and tests the model."""
    parser.add_argument("--data", metavar="SPEC",
                        help="dataset: digits, mnist, imagefolder:DIR (class per sub-folder) or samples:DIR "
                             "(label in the file name); default: the policy's \"data\", else the model's own")
    parser.add_argument("--preprocess", metavar="JSON",
                        help='image preprocessing, e.g. \'{"resize": 256, "mean": [0.485, 0.456, 0.406], '
                             '"std": [0.229, 0.224, 0.225], "channels": "rgb"}\' (default: the policy\'s)')


def policy_with_data(policy, args: argparse.Namespace):
    """The policy with --data/--preprocess applied, refused in one line when the dataset cannot feed
    its model (channels, size, classes) -- before any training or building."""
    from harness.datasets.imagefolder import Preprocess
    from harness.datasets.registry import check_fits

    preprocess = None
    if getattr(args, "preprocess", None):
        preprocess = parse_json_object(args.preprocess, "--preprocess", example='{"resize": 256}')
        Preprocess.parse(preprocess, "--preprocess")
    policy = policy.with_data(getattr(args, "data", None), preprocess)
    if policy.data is not None:
        check_fits(policy.data, policy.architecture)
    return policy


def parse_json_object(text: str, option: str, example: str = "") -> dict:
    """The JSON object an option holds (e.g. --args '{"width": 0.75}'); one-line errors otherwise."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise HarnessError(f"{option}: not valid JSON: {error.msg}") from None
    if not isinstance(value, dict):
        raise HarnessError(f"{option}: must be a JSON object" + (f", e.g. '{example}'" if example else ""))
    return value


def checked_policy_graph(policy, board, args: argparse.Namespace, console):
    """Refuse a policy that cannot fit the board (from its structure, in a second), then its
    integer graph: trained, random (--random-weights) or from a checkpoint (--calibration)."""
    from harness.measure.run import check_policy_fits  # torch loads only when a command runs
    from harness.quantize.pipeline import policy_graph

    check_policy_fits(policy, board)
    with console.status("quantizing the policy (cached after the first time)"):
        return policy_graph(policy, args.random_weights, progress=lambda message: console.log(message),
                            calibration_dir=args.calibration)


PROTOCOLS = ("binary", "mlperf-tiny")


def add_protocol_options(parser: argparse.ArgumentParser) -> None:
    """--protocol and --model-id: which firmware front end the host talks to (docs/mlperf-tiny.md)."""
    parser.add_argument("--protocol", choices=PROTOCOLS, default="binary",
                        help="the firmware's front end: our binary protocol (default, docs/protocol.md) or MLPerf "
                             "Tiny's DUT protocol (docs/mlperf-tiny.md)")
    parser.add_argument("--model-id", metavar="ID",
                        help="with --protocol mlperf-tiny: the id `profile` reports (default: ic01, kws01, vww01 or "
                             "ad01 from the model's input shape)")


def check_protocol_options(args: argparse.Namespace) -> None:
    if args.model_id is not None and args.protocol != "mlperf-tiny":
        raise HarnessError("--model-id needs --protocol mlperf-tiny")


def build_with_front_end(args: argparse.Namespace, policy, board, console):
    """(integer graph, BuildResult) of the policy's firmware with the front end --protocol names."""
    from harness.measure.mlperf_run import build_mlperf_firmware  # torch loads only when a command runs
    from harness.measure.run import build_policy_firmware

    check_protocol_options(args)
    graph = checked_policy_graph(policy, board, args, console)
    if args.protocol == "mlperf-tiny":
        return graph, build_mlperf_firmware(graph, policy, board, args.model_id)
    return graph, build_policy_firmware(graph, policy, board)

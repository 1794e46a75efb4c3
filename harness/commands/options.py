"""Options several subcommands share (this module registers no command of its own)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import HarnessError


def add_policy_and_board(parser: argparse.ArgumentParser, board_help: str = "board name") -> None:
    """POLICY, --board and the model source options of the commands that turn a policy into firmware."""
    from harness.pytest_plugin import DEFAULT_BOARD

    parser.add_argument("policy", type=Path, help="policy.json")
    parser.add_argument("--board", default=DEFAULT_BOARD, help=f"{board_help} (default {DEFAULT_BOARD})")
    add_model_source_options(parser)


def add_model_source_options(parser: argparse.ArgumentParser) -> None:
    """--random-weights and --calibration: where a policy's weights come from when not trained here."""
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights with calibrated requantization: no training, no dataset; for latency "
                             "and memory only (flagged in every report)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="ImageFolder (DIR/<class>/<image>) to calibrate a policy's model.checkpoint of a zoo "
                             "network trained elsewhere (default: seeded random inputs)")


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

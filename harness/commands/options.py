"""Options several subcommands share (this module registers no command of its own)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_model_source_options(parser: argparse.ArgumentParser) -> None:
    """--random-weights and --calibration: where a policy's weights come from when not trained here."""
    parser.add_argument("--random-weights", action="store_true",
                        help="random weights with calibrated requantization: no training, no dataset; for latency "
                             "and memory only (flagged in every report)")
    parser.add_argument("--calibration", type=Path, metavar="DIR",
                        help="ImageFolder (DIR/<class>/<image>) to calibrate a policy's model.checkpoint of a zoo "
                             "network trained elsewhere (default: seeded random inputs)")

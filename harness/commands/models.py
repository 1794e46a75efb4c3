"""`harness models [NAME --args JSON]`: the zoo's networks with parameter and MAC counts."""
from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from harness import zoo
from harness.commands.options import parse_json_object
from harness.zoo.catalogue import Variant, variants
from harness.zoo.counts import counts


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models", help="list the zoo's networks with parameter and MAC counts",
        description="Parameters (weights + one bias per output channel, batch-norm folded) and MACs "
                    "(convolutions and fully connected layers) of the zoo's standard variants, beside "
                    "the published figures. With NAME, one model with --args.")
    parser.add_argument("name", nargs="?", help="one zoo model (default: every standard variant)")
    parser.add_argument("--args", default="{}", help='model arguments as JSON, e.g. \'{"width": 0.5}\'')
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name is None:
        rows = variants()
    else:
        rows = [Variant(args.name, parse_json_object(args.args, "--args"))]
    if args.json:
        print(json.dumps([model_row(variant) for variant in rows], indent=1))
        return 0
    Console().print(models_table(rows))
    return 0


def model_row(variant: Variant) -> dict:
    arch = zoo.build(variant.zoo, variant.args)
    count = counts(arch)
    row = {"model": variant.zoo, "args": variant.args, "input": list(arch.input_shape), "layers": count.layers,
           "params": count.params, "weights": count.weights, "macs": count.macs}
    if variant.published:
        params, macs, source = variant.published
        row["published"] = {"params": params, "macs": macs, "source": source}
    return row


def _short_count(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"


def models_table(rows: list[Variant]) -> Table:
    """Counts beside the published figures; sources are numbered in the caption so the table
    stays readable in a normal terminal."""
    table = Table(title="zoo models", box=None, pad_edge=False, header_style="bold")
    for column in ("model", "input", "layers", "params", "MACs", "published"):
        table.add_column(column, justify="left" if column in ("model", "input") else "right", no_wrap=True)
    sources: list[str] = []
    for variant in rows:
        arch = zoo.build(variant.zoo, variant.args)
        count = counts(arch)
        published = ""
        if variant.published:
            params, macs, source = variant.published
            if source not in sources:
                sources.append(source)
            published = f"{_short_count(params)}/{_short_count(macs)} [{sources.index(source) + 1}]"
        table.add_row(variant.label, "x".join(map(str, arch.input_shape)), str(count.layers),
                      _short_count(count.params), _short_count(count.macs), published)
    table.caption = "published: params / MACs and the source number.   " + "  ".join(
        f"[{n}] {source}" for n, source in enumerate(sources, 1))
    return table

"""`harness cache info|clean [--older-than DAYS] [--kind K]`: what the cache holds, and removing it."""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError
from harness.units import format_size

SECONDS_PER_DAY = 86_400


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cache", help="show or clean the cache (builds, graphs, checkpoints, tables)",
                                   description="The cache keeps builds, generated C, lowered graphs, trained "
                                               "checkpoints and measured latency tables. New builds evict the "
                                               "least recently used builds, sources and graphs above "
                                               "$MPQ_HARNESS_CACHE_MAX (default 2GB).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="size and entries per kind")
    info.add_argument("--json", action="store_true", help="print as JSON")
    info.set_defaults(func=run_info)
    clean = actions.add_parser("clean", help="remove entries (all, or those unused for --older-than days)")
    clean.add_argument("--older-than", type=float, metavar="DAYS", help="only entries unused for more than DAYS")
    clean.add_argument("--kind", action="append", help="only this kind (repeatable), e.g. builds")
    clean.set_defaults(func=run_clean)


def run_info(args: argparse.Namespace) -> int:
    from harness import cache
    from harness.paths import cache_root

    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for entry in cache.entries():
        totals[entry.kind][0] += 1
        totals[entry.kind][1] += entry.bytes
    if args.json:
        print(json.dumps({"root": str(cache_root()), "cap_bytes": cache.cap_bytes(),
                          "kinds": {kind: {"entries": n, "bytes": size} for kind, (n, size) in sorted(totals.items())}},
                         indent=1))
        return 0
    table = Table(title=f"cache {cache_root()}", box=None, pad_edge=False, header_style="bold")
    for column in ("kind", "entries", "size", "evicted above the cap"):
        table.add_column(column, justify="left" if column == "kind" else "right")
    for kind, (count, size) in sorted(totals.items()):
        table.add_row(kind, str(count), format_size(size), "yes" if kind in cache.EVICTABLE_KINDS else "no")
    table.caption = f"total {format_size(sum(size for _, size in totals.values()))}, cap {format_size(cache.cap_bytes())}"
    Console().print(table)
    return 0


def run_clean(args: argparse.Namespace) -> int:
    from harness import cache

    if args.older_than is not None and not args.older_than >= 0:
        raise HarnessError(f"--older-than must be a number of days >= 0, got {args.older_than}")
    known = {entry.kind for entry in cache.entries()}
    for kind in args.kind or ():
        if kind not in known:
            raise HarnessError(f"--kind {kind!r}: no such kind in the cache (kinds: {', '.join(sorted(known)) or 'none'})")
    older = None if args.older_than is None else args.older_than * SECONDS_PER_DAY
    removed = cache.clean(older_than_s=older, kinds=tuple(args.kind) if args.kind else None)
    Console().print(f"removed {len(removed)} entries, {format_size(sum(entry.bytes for entry in removed))}")
    return 0

"""`harness report RUN.json [MORE.json ...] --html OUT [--markdown OUT]`: reports a person reads."""
from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from harness.errors import HarnessError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="HTML or Markdown report of one or more measure runs, with plots",
        description="Per-layer cost bars with MACs and bits, the per-image latency histogram, memory against the "
                    "budget, device vs host accuracy and, for several runs, a side-by-side comparison. The HTML "
                    "file is self-contained (plots embedded).")
    parser.add_argument("runs", nargs="+", type=Path, help="JSON reports written by `harness measure --out`")
    parser.add_argument("--html", type=Path, help="write a self-contained HTML page here")
    parser.add_argument("--markdown", type=Path, help="write Markdown here (plots as PNG files beside it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.report.document import load_report, render_html, write_markdown

    if args.html is None and args.markdown is None:
        raise HarnessError("give --html OUT and/or --markdown OUT")
    for out in (args.html, args.markdown):
        if out is not None and (out.is_dir() or not out.parent.is_dir()):
            raise HarnessError(f"{out}: cannot write there (a directory, or its folder does not exist)")
    reports = [load_report(path) for path in args.runs]
    console = Console(stderr=True)
    if args.html is not None:
        args.html.write_text(render_html(reports), encoding="utf-8")
        console.print(f"wrote {args.html}")
    if args.markdown is not None:
        files = write_markdown(reports, args.markdown)
        console.print(f"wrote {args.markdown} and {len(files) - 1} PNG files beside it")
    return 0

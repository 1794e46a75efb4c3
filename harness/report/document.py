"""`harness report`: measurement reports (the JSON `harness measure --out` writes) as one
self-contained HTML page (plots embedded as PNG) or as Markdown with the PNGs beside it."""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from harness.errors import HarnessError
from harness.report import plots
from harness.units import format_size

REQUIRED_KEYS = ("policy", "board", "images", "bit_exact", "latency", "per_image", "layers", "memory")


def load_report(path: Path) -> dict:
    """A measure report; HarnessError naming the file when it is not one."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HarnessError(f"{path}: no such report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HarnessError(f"{path}: not a readable JSON report ({type(error).__name__})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(report, dict) or key not in report]
    if missing:
        raise HarnessError(f"{path}: not a `harness measure` report (missing {', '.join(missing)})")
    return report


def figures(report: dict) -> list[tuple[str, bytes]]:
    """(caption, PNG) of one run."""
    result = [("cost per layer", plots.layer_bars(report)), ("latency per image", plots.latency_histogram(report)),
              ("memory against budget", plots.memory_bars(report))]
    if report.get("device_accuracy") is not None:
        result.append(("accuracy, device and host", plots.accuracy_bars(report)))
    return result


def summary_rows(report: dict) -> list[tuple[str, str]]:
    lat, mem = report["latency"], report["memory"]
    rows = [("board", report["board"]), ("images", str(report["images"])),
            ("bit-exact outputs", f"{report['bit_exact']}/{report['images']}")]
    if report.get("random_weights"):
        rows.append(("random weights", report.get("note", "predictions are meaningless")))
    elif report.get("device_accuracy") is not None:
        rows.append(("top-1 device / host", f"{report['device_accuracy']:.2%} / {report['host_accuracy']:.2%}"))
    rows.append((f"{lat['unit']} per image (min / median / max)",
                 f"{lat['min']:,.0f} / {lat['median']:,.0f} / {lat['max']:,.0f}"))
    rows.append(("what is counted", lat.get("meaning", "")))
    if "median_ms" in lat:
        rows.append(("latency (median)", f"{lat['median_ms']:.3f} ms"))
    if "estimate_ms" in lat:
        rows.append(("latency estimate", f"≈ {lat['estimate_ms']:.3f} ms {lat['estimate_note']}"))
    for what in ("flash", "ram"):
        rows.append((f"{what} used / budget", f"{format_size(mem[f'{what}_bytes'])} of "
                                              f"{format_size(mem[f'{what}_budget'])}"))
    return rows


def layer_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    unit = report["latency"]["unit"]
    header = ["layer", "op", "bits w / in / out", "MACs", unit, f"{unit}/MAC", "share"]
    rows = []
    for layer in report["layers"]:
        per_mac = layer.get(f"{unit}_per_mac")
        rows.append([layer["name"], layer["op"],
                     f"{layer.get('w_bits') or '-'} / {layer.get('in_bits', '?')} / {layer.get('out_bits', '?')}",
                     f"{layer.get('macs', 0):,}", f"{layer[unit]:,.0f}", "" if per_mac is None else f"{per_mac:.2f}",
                     f"{layer['share']:.1%}"])
    return header, rows


def comparison_rows(reports: list[dict]) -> tuple[list[str], list[list[str]]]:
    unit = reports[0]["latency"]["unit"]
    header = ["policy", "board", "top-1 device", f"median {unit}", "flash", "RAM", "bit-exact"]
    rows = [[r["policy"], r["board"], "-" if r.get("device_accuracy") is None else f"{r['device_accuracy']:.2%}",
             f"{r['latency']['median']:,.0f}", format_size(r["memory"]["flash_bytes"]),
             format_size(r["memory"]["ram_bytes"]), f"{r['bit_exact']}/{r['images']}"] for r in reports]
    return header, rows


def check_comparable(reports: list[dict]) -> None:
    units = {report["latency"]["unit"] for report in reports}
    if len(units) > 1:
        raise HarnessError(f"cannot compare runs counted in different units ({', '.join(sorted(units))})")


# -- HTML -----------------------------------------------------------------------------------
_STYLE = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}"
          "th{background:#eee}img{max-width:100%;display:block;margin:1em 0}.note{color:#a60}")


def _table(header: list[str] | None, rows: list[list[str]] | list[tuple[str, str]]) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _img(caption: str, png: bytes) -> str:
    data = base64.b64encode(png).decode()
    return f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}"><figcaption>' \
           f"{html.escape(caption)}</figcaption></figure>"


def render_html(reports: list[dict]) -> str:
    """One page: a comparison first when there are several runs, then each run."""
    check_comparable(reports)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>mpq-harness report</title>"
             f"<style>{_STYLE}</style></head><body><h1>mpq-harness report</h1>"]
    if len(reports) > 1:
        parts += ["<h2>runs compared</h2>", _table(*comparison_rows(reports)),
                  _img("accuracy against latency", plots.comparison(reports))]
    for report in reports:
        parts += [f"<h2>{html.escape(report['policy'])} on {html.escape(report['board'])}</h2>",
                  _table(None, summary_rows(report))]
        parts += [_img(caption, png) for caption, png in figures(report)]
        parts += ["<h3>layers</h3>", _table(*layer_rows(report))]
        if "provenance" in report:
            parts += ["<h3>provenance</h3>", _table(None, sorted(_flat(report["provenance"]).items()))]
    parts.append("</body></html>")
    return "\n".join(parts)


def _flat(block: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in block.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


# -- Markdown -------------------------------------------------------------------------------
def _md_table(header: list[str] | None, rows) -> str:
    header = header or ["", ""]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(reports: list[dict], out: Path) -> list[Path]:
    """`out` (Markdown) and its PNGs beside it (<stem>-<n>.png); the files written."""
    check_comparable(reports)
    written, parts = [], ["# mpq-harness report", ""]

    def picture(caption: str, png: bytes) -> str:
        path = out.with_name(f"{out.stem}-{len(written) + 1}.png")
        path.write_bytes(png)
        written.append(path)
        return f"![{caption}]({path.name})"

    if len(reports) > 1:
        parts += ["## runs compared", "", _md_table(*comparison_rows(reports)), "",
                  picture("accuracy against latency", plots.comparison(reports)), ""]
    for report in reports:
        parts += [f"## {report['policy']} on {report['board']}", "", _md_table(None, summary_rows(report)), ""]
        parts += [picture(caption, png) + "\n" for caption, png in figures(report)]
        parts += ["### layers", "", _md_table(*layer_rows(report)), ""]
    out.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return [out, *written]

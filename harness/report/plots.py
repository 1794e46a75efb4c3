"""The pictures of a measurement report, as PNG bytes (matplotlib, no display needed)."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt  # noqa: E402  (the backend is chosen first)
from matplotlib.ticker import FuncFormatter  # noqa: E402

KIB = 1024
SI_FORMATTER = FuncFormatter(lambda value, _: f"{value / 1e6:g}M" if abs(value) >= 1e6 else
                    (f"{value / 1e3:g}k" if abs(value) >= 1e3 else f"{value:g}"))


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def layer_bars(report: dict) -> bytes:
    """Cost of every layer (instructions or cycles), labelled with its bits and cost per MAC."""
    unit = report["latency"]["unit"]
    layers = report["layers"]
    figure, axes = plt.subplots(figsize=(8, 0.8 + 0.28 * len(layers)))
    names = [layer["name"] for layer in layers][::-1]
    costs = [layer[unit] for layer in layers][::-1]
    axes.barh(names, costs, color="#4C72B0")
    per_mac = f"{unit}_per_mac"
    for y, layer in enumerate(layers[::-1]):
        bits = f"w{layer.get('w_bits') or '-'} a{layer.get('in_bits', '?')}→{layer.get('out_bits', '?')}"
        detail = f"  {bits}" + (f", {layer[per_mac]:.2f}/MAC" if layer.get(per_mac) else "")
        axes.text(layer[unit], y, detail, va="center", fontsize=7)
    axes.xaxis.set_major_formatter(SI_FORMATTER)
    axes.set_xlabel(f"{unit} per inference (median)")
    axes.set_title(f"{report['policy']} on {report['board']}: cost per layer")
    axes.margins(x=0.25)
    return _png(figure)


def latency_histogram(report: dict) -> bytes:
    """How the per-image latency spreads."""
    unit = report["latency"]["unit"]
    figure, axes = plt.subplots(figsize=(6, 3))
    axes.hist(report["per_image"], bins=min(30, max(5, len(report["per_image"]) // 3)), color="#55A868")
    axes.xaxis.set_major_formatter(SI_FORMATTER)
    axes.set_xlabel(f"{unit} per image")
    axes.set_ylabel("images")
    axes.set_title(f"latency over {report['images']} images")
    return _png(figure)


def memory_bars(report: dict) -> bytes:
    """Flash and RAM against their budgets, stacked by what takes them."""
    mem = report["memory"]
    weights = mem.get("predicted_weight_bytes", 0)
    arena = mem.get("predicted_arena_bytes", 0)
    scratch = mem.get("scratch_bytes", 0)
    stacks = {
        "flash": [("weights and requantization", min(weights, mem["flash_bytes"])),
                  ("code and constants", max(mem["flash_bytes"] - weights, 0))],
        "RAM": [("activation arena", min(arena, mem["ram_bytes"])), ("kernel scratch", scratch),
                ("runtime and buffers", max(mem["ram_bytes"] - arena - scratch, 0))],
    }
    budgets = {"flash": mem["flash_budget"], "RAM": mem["ram_budget"]}
    colors = ["#4C72B0", "#DD8452", "#8172B3"]
    figure, rows = plt.subplots(2, 1, figsize=(7, 2.8))
    for axes, (what, parts) in zip(rows, stacks.items()):
        left = 0.0
        for color, (label, size) in zip(colors, parts):
            if size:
                axes.barh([what], [size / KIB], left=left, color=color, label=f"{label} {size / KIB:,.1f} kB")
                left += size / KIB
        axes.axvline(budgets[what] / KIB, color="red", linestyle="--", label=f"budget {budgets[what] / KIB:,.0f} kB")
        axes.set_xlim(0, max(budgets[what], left * KIB) / KIB * 1.05)
        axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        axes.set_xlabel("kB")
    figure.suptitle("memory against the board's budget (ELF; split as the memory model predicts)", fontsize=9)
    return _png(figure)


def accuracy_bars(report: dict) -> bytes:
    """Top-1 on the device and of the host reference (equal when every output is bit-exact)."""
    figure, axes = plt.subplots(figsize=(4, 2.6))
    values = [100 * report["device_accuracy"], 100 * report["host_accuracy"]]
    axes.bar(["device", "host reference"], values, color=["#4C72B0", "#C44E52"])
    for x, value in enumerate(values):
        axes.text(x, value, f"{value:.2f} %", ha="center", va="bottom", fontsize=8)
    axes.set_ylim(0, 105)
    axes.set_ylabel("top-1 (%)")
    axes.set_title(f"accuracy over {report['images']} images ({report['bit_exact']} bit-exact)", fontsize=9)
    return _png(figure)


def comparison(reports: list[dict]) -> bytes:
    """Several runs: accuracy against median latency, marker area by flash, each run named."""
    unit = reports[0]["latency"]["unit"]
    figure, axes = plt.subplots(figsize=(7, 4))
    flash = [report["memory"]["flash_bytes"] for report in reports]
    largest = max(flash)
    for report, size in zip(reports, flash):
        accuracy = report.get("device_accuracy")
        y = 100 * accuracy if accuracy is not None else 0.0
        x = report["latency"]["median"]
        axes.scatter([x], [y], s=40 + 400 * size / largest, alpha=0.6)
        axes.annotate(f"{report['policy']}\n{size / KIB:,.0f} kB flash", (x, y), fontsize=7,
                      textcoords="offset points", xytext=(6, 6))
    axes.xaxis.set_major_formatter(SI_FORMATTER)
    axes.set_xlabel(f"median {unit} per image")
    axes.set_ylabel("device top-1 (%)" + (" (random weights: 0)" if any(r.get("random_weights") for r in reports) else ""))
    axes.set_title("runs compared (marker area: flash)")
    axes.margins(0.2)
    return _png(figure)


def heatmap(rows: list[str], columns: list[str], values: list[list[float | None]], title: str, label: str) -> bytes:
    """A rows x columns grid coloured by value (None: not measured), each cell written in."""
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    figure, axes = plt.subplots(figsize=(1.2 + 0.55 * len(columns), 1.0 + 0.35 * len(rows)))
    image = axes.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
    axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize=7)
    axes.set_yticks(range(len(rows)), rows, fontsize=7)
    for (r, c), value in np.ndenumerate(grid):
        if not np.isnan(value):
            axes.text(c, r, SI_FORMATTER(value, None), ha="center", va="center", fontsize=5, color="white")
    figure.colorbar(image, ax=axes, label=label, format=SI_FORMATTER)
    axes.set_title(title, fontsize=9)
    return _png(figure)

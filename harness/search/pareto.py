"""The Pareto table and plot of a search: accuracy against latency, memory alongside."""
from __future__ import annotations

import csv
from pathlib import Path


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (latency, accuracy) points: True where no other point is at least as fast and as
    accurate and strictly better in one of them."""
    return [not any(lo <= lat and ao >= acc and (lo < lat or ao > acc) for lo, ao in points)
            for lat, acc in points]


def unique_episodes(records: list[dict]) -> list[dict]:
    """One row per distinct policy (its first episode)."""
    rows: dict[str, dict] = {}
    for record in records:
        if record["event"] == "episode":
            rows.setdefault(record["policy_hash"], record)
    return list(rows.values())


def write_pareto(records: list[dict], out_dir: Path, layer_order: list[str],
                 chosen: str | None = None) -> tuple[Path, Path]:
    """pareto.csv (every distinct policy, flagged when on the front; bits as layer:w/a in
    `layer_order`) and pareto.png (with the `chosen` policy hash marked)."""
    rows = [_scored(r) for r in unique_episodes(records)]
    verified = {r["policy_hash"]: _scored(r) for r in records if r["event"] == "verified"}
    front = pareto_front([(r["predicted_latency"], r["accuracy"]) for r in rows])
    csv_path = out_dir / "pareto.csv"
    columns = ["episode", "policy_hash", "accuracy", "predicted_latency", "measured_latency", "device_accuracy",
               "flash_bytes", "ram_bytes", "reward", "pareto", "bits"]
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row, on_front in sorted(zip(rows, front), key=lambda pair: pair[0]["predicted_latency"]):
            check = verified.get(row["policy_hash"], {})
            entries = [(name, row["layers"][name]) for name in layer_order]
            bits = " ".join(f"{name}:{e.get('w_bits', '-')}/{e.get('a_bits', '-')}" for name, e in entries)
            writer.writerow([row["episode"], row["policy_hash"], f"{row['accuracy']:.4f}",
                             f"{row['predicted_latency']:.0f}", _number(check.get("measured_latency")),
                             _number(check.get("device_accuracy"), ".4f"), row["flash_bytes"], row["ram_bytes"],
                             f"{row['reward']:.4f}", int(on_front), bits])
    png_path = out_dir / "pareto.png"
    _plot(rows, front, verified, png_path, chosen)
    return csv_path, png_path


def _scored(record: dict) -> dict:
    """The record with accuracy NaN where the search scored none (--random-weights): off the plot, no front."""
    return record if record.get("accuracy") is not None else record | {"accuracy": float("nan")}


def _number(value, spec: str = ".0f") -> str:
    return "" if value is None else format(value, spec)


def _plot(rows: list[dict], front: list[bool], verified: dict, path: Path, chosen: str | None = None) -> None:
    """Episodes (area: flash, with a key), the predicted front, verified candidates linked from
    their predicted to their measured latency, the chosen policy and the all-8-bit reference
    (a record with event "reference") marked; the legend outside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from harness.report.plots import SI_FORMATTER

    unit = rows[0].get("latency_unit", "ticks") if rows else "ticks"
    largest = max((r["flash_bytes"] for r in rows), default=1)

    def area(flash: float) -> float:
        return max(8.0, flash / largest * 80)

    figure, axes = plt.subplots(figsize=(9, 4.8))
    axes.scatter([r["predicted_latency"] for r in rows], [r["accuracy"] for r in rows],
                 s=[area(r["flash_bytes"]) for r in rows], alpha=0.3, color="C0", label="episodes (predicted)")
    on_front = sorted((r for r, f in zip(rows, front) if f), key=lambda r: r["predicted_latency"])
    axes.plot([r["predicted_latency"] for r in on_front], [r["accuracy"] for r in on_front], "-o", color="C1",
              markersize=4, label="Pareto front (predicted)")
    for index, check in enumerate(verified.values()):
        axes.annotate("", (check["measured_latency"], check["accuracy"]),
                      (check["predicted_latency"], check["accuracy"]),
                      arrowprops={"arrowstyle": "->", "color": "C3", "alpha": 0.6})
        axes.scatter([check["measured_latency"]], [check["accuracy"]], marker="x", color="C3", s=60,
                     label="verified: predicted → measured" if index == 0 else None)
    if chosen in verified:
        best = verified[chosen]
        axes.scatter([best["measured_latency"]], [best["accuracy"]], marker="*", s=260, color="gold",
                     edgecolors="black", zorder=5, label="chosen policy")
    for record in (r for r in rows if r.get("reference")):
        axes.scatter([record["predicted_latency"]], [record["accuracy"]], marker="D", s=70, color="black",
                     zorder=5, label="all-8-bit reference")
    for flash in (largest / 4, largest / 2, largest):  # the key to marker areas
        axes.scatter([], [], s=area(flash), color="C0", alpha=0.3, label=f"flash {flash / 1024:,.0f} kB")
    axes.xaxis.set_major_formatter(SI_FORMATTER)
    axes.set_xlabel(f"latency ({unit})")
    axes.set_ylabel("validation accuracy (short QAT)")
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

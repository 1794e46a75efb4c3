"""`harness report`: HTML and Markdown from real measure runs, rendered in headless Chromium."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.cli import main
from harness.paths import POLICIES_DIR

CHROMIUM = shutil.which("chromium")  # Debian's package; tools/setup.sh installs it


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    """Two real 5-image runs on qemu-m7 (digits, mixed and 8-bit)."""
    out = tmp_path_factory.mktemp("runs")
    paths = []
    for name in ("digits-mixed", "digits-int8"):
        path = out / f"{name}.json"
        assert main(["measure", str(POLICIES_DIR / f"{name}.json"), "--images", "5", "--out", str(path)]) == 0
        paths.append(path)
    return paths


def test_measure_reports_carry_provenance_layer_bits_and_an_estimate(runs):
    report = json.loads(runs[0].read_text())
    assert {"git_commit", "gcc", "firmware_sha256", "board_file_sha256", "date", "host"} <= set(report["provenance"])
    layer = report["layers"][0]
    assert layer["macs"] > 0 and layer["w_bits"] in (2, 4, 8) and layer["in_bits"] == 8
    assert layer["instructions_per_mac"] == pytest.approx(layer["instructions"] / layer["macs"])
    lat = report["latency"]
    assert lat["estimate_ms"] == pytest.approx(lat["median"] / 480e6 * 1e3)
    assert "estimate" in lat["estimate_note"] and "480 MHz" in lat["estimate_note"]


def test_html_report_is_self_contained_with_every_plot(runs, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "--html", str(out)]) == 0
    page = out.read_text()
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    # a comparison, then per run: layers, histogram, memory, accuracy
    assert len(images) == 1 + 2 * 4
    assert "runs compared" in page and "digits-mixed" in page and "digits-int8" in page
    assert "src=\"http" not in page and "<script" not in page


def test_markdown_report_writes_its_pngs_beside_it(runs, tmp_path):
    out = tmp_path / "report.md"
    assert main(["report", str(runs[0]), "--markdown", str(out)]) == 0
    text = out.read_text()
    pictures = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
    assert len(pictures) == 4
    for name in pictures:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_bad_reports_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"policy": "x"}')
    assert main(["report", str(bad), "--html", str(tmp_path / "r.html")]) == 2
    assert "not a `harness measure` report" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.json"), "--html", str(tmp_path / "r.html")]) == 2
    assert main(["report", str(bad)]) == 2
    assert main(["report", str(bad), "--html", str(tmp_path)]) == 2


@pytest.mark.tools("chromium")
def test_headless_chromium_renders_the_page_with_every_image(runs, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", *map(str, runs), "--html", str(out)]) == 0
    screenshot = tmp_path / "shot.png"
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--user-data-dir={tmp_path / 'profile'}"]
    shot = subprocess.run([*common, f"--screenshot={screenshot}", "--window-size=1100,2400", out.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000
    # the DOM after load: every image decoded (naturalWidth > 0), so none is broken
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text().replace(
        "</body>", "<script>window.onload=()=>{document.title='loaded '+[...document.images]"
                   ".filter(i=>i.complete&&i.naturalWidth>0).length+'/'+document.images.length}</script></body>"))
    dom = subprocess.run([*common, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>loaded 9/9</title>" in dom.stdout

"""Listings a person reads at 80 columns, their --json twins, --version, and provenance blocks."""
from __future__ import annotations

import json
import subprocess

import pytest

from harness import __version__, zoo
from harness.backends import load_board, load_boards
from harness.cli import main
from harness.measure.provenance import NOT_A_CHECKOUT, provenance
from harness.zoo.catalogue import variants


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


def _lines(out: str) -> list[str]:
    return out.splitlines()


def test_boards_at_80_columns_show_full_names_and_fit(capsys, narrow):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in _lines(out))
    assert "…" not in out
    for board in load_boards():
        assert board.name in out


def test_models_at_80_columns_show_every_full_name_including_digits(capsys, narrow):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(len(line) <= 80 for line in _lines(out))
    assert "…" not in out
    for variant in variants():
        assert variant.label in out
    assert "digits-cnn" in out


def test_boards_json_parses_and_lists_every_board(capsys):
    assert main(["boards", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in listing["boards"]] == [board.name for board in load_boards()]
    assert {"flash_budget", "ram_budget", "tools_present", "counter"} <= set(listing["boards"][0])


def test_models_json_parses_with_counts_that_match_the_zoo(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(variants())
    resnet = next(row for row in rows if row["model"] == "mlperf_ic_resnet8")
    from harness.zoo.counts import counts

    assert resnet["macs"] == counts(zoo.build("mlperf_ic_resnet8")).macs
    assert resnet["input"] == list(zoo.build("mlperf_ic_resnet8").input_shape)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"harness {__version__}"


def test_provenance_names_versions_digests_and_commit(tmp_path):
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF not really")
    block = provenance(load_board("qemu-m7"), elf)
    assert block["harness"] == __version__
    assert block["git_commit"] == NOT_A_CHECKOUT or len(block["git_commit"].split("-")[0]) == 40
    assert block["board"] == "qemu-m7" and len(block["board_file_sha256"]) == 16
    assert block["firmware_sha256"] != provenance(load_board("qemu-m7"), tmp_path / "other.elf")["firmware_sha256"]
    assert block["packages"]["numpy"] and block["date"].endswith("+00:00") and block["host"]


def test_provenance_names_python_m_harness_cli_as_the_harness_command(monkeypatch):
    from harness.measure import provenance as module

    monkeypatch.setattr("sys.argv", [str(module.CLI_MODULE), "bench", "kernels"])
    assert provenance()["command"] == "harness bench kernels"
    monkeypatch.setattr("sys.argv", ["tools/link_bench.py", "--out", "x.json"])
    assert provenance()["command"] == "link_bench.py --out x.json"


def test_the_commit_is_dirty_for_changed_code_not_for_a_rewritten_results_file(tmp_path, monkeypatch):
    from harness.measure import provenance as module

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    (tmp_path / "results").mkdir()
    for name in ("code.py", "results/table.json"):
        (tmp_path / name).write_text("1\n")
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    monkeypatch.setattr(module, "REPO_ROOT", tmp_path)

    def commit():
        module.git_commit.cache_clear()
        return module.git_commit()

    clean = commit()
    assert len(clean) == 40
    (tmp_path / "results/table.json").write_text("2\n")
    assert commit() == clean
    (tmp_path / "code.py").write_text("2\n")
    assert commit() == clean + "-dirty"
    module.git_commit.cache_clear()

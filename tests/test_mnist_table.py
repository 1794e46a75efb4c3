"""tools/mnist_table.py, bounded: one model, one policy, short training, host only. The full
table (both models, int8/int4/mixed, 100 images each on qemu-m7) is results/mnist-table.json."""
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import mnist_table  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))


@pytest.mark.slow  # about 20 s of CPU (one float epoch, one QAT epoch); minutes on a loaded machine
def test_bounded_table_has_every_stage_and_integer_matches_fake_quant(tmp_path, cache):
    out = tmp_path / "table.json"
    assert mnist_table.main(["--models", "lenet5-mnist", "--kinds", "int8", "--float-epochs", "1",
                             "--qat-epochs", "1", "--no-board", "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    (row,) = table["rows"]
    assert table["meta"]["split"].startswith("3250 train / 500 val / 1250 test")
    assert row["n_test"] == 1250 and row["float"] > 0.85  # one epoch already learns MNIST
    assert abs(row["integer"] - row["fake_quant"]) <= 0.005 and row["argmax_agreement"] >= 0.99
    assert "| lenet5-mnist | lenet5-mnist-int8 |" in out.with_suffix(".md").read_text()


@pytest.mark.device
@pytest.mark.slow
def test_bounded_table_streams_the_test_images_to_the_board(tmp_path, cache, board_name):
    # the board half of the table: it had called measure() with a path where a RunLog goes
    out = tmp_path / "table.json"
    assert mnist_table.main(["--models", "lenet5-mnist", "--kinds", "int8", "--float-epochs", "1",
                             "--qat-epochs", "1", "--board", board_name, "--images", "3", "--out", str(out)]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["board"]["board"] == board_name and row["board"]["images"] == row["board"]["bit_exact"] == 3


def test_shipped_table_meets_the_targets():
    """The committed results: integer within 0.5 pp of fake-quant, mixed within 1.5 pp of float,
    every policy 100/100 bit-exact on qemu-m7."""
    table = json.loads(mnist_table.DEFAULT_OUT.read_text())
    kinds = {(row["model"], row["policy"].rsplit("-", 1)[1]) for row in table["rows"]}
    assert kinds == {(m, k) for m in mnist_table.MODELS for k in mnist_table.KINDS}
    for row in table["rows"]:
        assert abs(row["integer"] - row["fake_quant"]) <= 0.005, row["policy"]
        if row["policy"].endswith("mixed"):
            assert row["float"] - row["integer"] <= 0.015, row["policy"]
        assert row["board"]["bit_exact"] == row["board"]["images"] == 100, row["policy"]
    quoted = mnist_table.DEFAULT_OUT.with_suffix(".md").read_text()
    assert quoted in (REPO / "docs" / "models.md").read_text()  # docs/models.md quotes the results verbatim

"""The trained files shipped in harness/frontend/shipped: made by the current code (else this
fails, naming the command that makes them again), never used when stale, and enough for the
demo to measure with an empty cache and no training."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.cli import main
from harness.frontend import shipped
from harness.frontend.train import FLOAT_EPOCHS
from harness.paths import REPO_ROOT
from harness.policy import ModelRef, load_policy

STALE = f"stale: run `{shipped.REGENERATE}` and commit harness/frontend/shipped/ and results/shipped-digits.json"


def _by_kind(entries: list[shipped.Shipped]) -> dict[str, list[shipped.Shipped]]:
    kinds: dict[str, list[shipped.Shipped]] = {}
    for entry in entries:
        kinds.setdefault(entry.kind, []).append(entry)
    return kinds


def test_shipped_files_are_made_by_the_current_code():
    kinds = _by_kind(shipped.entries())
    [float_entry] = kinds["float"]
    assert float_entry.sha256 == shipped.file_sha256(float_entry.path), f"{float_entry.file}: bytes changed; {STALE}"
    assert float_entry.key == shipped.float_key(ModelRef(float_entry.name), None, FLOAT_EPOCHS), \
        f"{float_entry.file}: the float training code changed; {STALE}"
    qat = {entry.name: entry for entry in kinds["qat"]}
    for relative in shipped.SHIPPED_POLICIES:
        policy = load_policy(REPO_ROOT / relative)
        entry = qat.get(policy.quantization_hash)
        assert entry is not None, f"{relative}: no shipped QAT state for its quantization hash; {STALE}"
        assert entry.sha256 == shipped.file_sha256(entry.path), f"{entry.file}: bytes changed; {STALE}"
        assert entry.key == shipped.qat_key(policy, float_entry.sha256), \
            f"{entry.file}: the QAT code or {relative} changed; {STALE}"


def test_a_stale_or_altered_file_is_not_used(tmp_path, monkeypatch):
    manifest = json.loads(shipped.MANIFEST.read_text())
    float_entry = next(entry for entry in manifest["files"] if entry["kind"] == "float")
    (tmp_path / float_entry["file"]).write_bytes(shipped.SHIPPED_DIR.joinpath(float_entry["file"]).read_bytes())
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)
    monkeypatch.setattr(shipped, "MANIFEST", tmp_path / "manifest.json")
    model, said = ModelRef(float_entry["name"]), []

    def write(entry: dict) -> None:
        shipped.MANIFEST.write_text(json.dumps({"files": [entry]}))

    write(float_entry)
    assert shipped.shipped_float(model, None, FLOAT_EPOCHS, said.append) == tmp_path / float_entry["file"]
    assert shipped.shipped_float(model, None, FLOAT_EPOCHS + 1, said.append) is None  # another recipe
    write(float_entry | {"key": "0" * 64})  # made by other code
    assert shipped.shipped_float(model, None, FLOAT_EPOCHS, said.append) is None
    assert "does not match this code" in said[-1] and shipped.REGENERATE in said[-1]
    write(float_entry)
    (tmp_path / float_entry["file"]).write_bytes(b"not the shipped bytes")
    assert shipped.shipped_float(model, None, FLOAT_EPOCHS, said.append) is None


@pytest.mark.slow  # builds the firmware in an empty cache: tens of seconds, minutes on a loaded machine
@pytest.mark.tools("arm-none-eabi-gcc", "make", "qemu-system-arm")
def test_the_demo_measures_with_an_empty_cache_and_no_training(tmp_path, monkeypatch, capsys):
    """tools/demo.sh's command with 3 images: the shipped files stand in for all training."""
    from harness.frontend import train
    from harness.quantize import qat

    def no_training(*args, **kwargs):
        raise AssertionError("the demo trained")

    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(train, "fit", no_training)
    monkeypatch.setattr(qat, "fit", no_training)
    out = tmp_path / "demo-report.json"
    assert main(["measure", str(REPO_ROOT / "policies" / "digits-mixed.json"), "--board", "qemu-m7",
                 "--images", "3", "--out", str(out)]) == 0
    said = capsys.readouterr()
    text = said.out + said.err
    assert "using the shipped float file" in text and "using the shipped qat file" in text, text
    report = json.loads(out.read_text())
    assert report["bit_exact"] == report["images"] == 3


@pytest.mark.slow  # one float and one QAT epoch: about a minute of CPU, minutes on a loaded machine
def test_ship_checkpoints_writes_files_the_harness_accepts(tmp_path):
    """A bounded run of the regenerating tool (1 float epoch, 1 QAT epoch, one policy): its
    manifest's keys are the current code's for that recipe, and its results file has the costs."""
    out, results = tmp_path / "shipped", tmp_path / "cost.json"
    policy_file = shipped.SHIPPED_POLICIES[0]
    command = [sys.executable, str(REPO_ROOT / "tools" / "ship_checkpoints.py"), "--float-epochs", "1",
               "--qat-epochs", "1", "--policies", policy_file, "--out-dir", str(out), "--results", str(results)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    kinds = _by_kind([shipped.Shipped(**entry) for entry in json.loads((out / "manifest.json").read_text())["files"]])
    [float_entry], [qat_entry] = kinds["float"], kinds["qat"]
    assert float_entry.key == shipped.float_key(ModelRef("digits-cnn"), None, 1)
    assert float_entry.sha256 == shipped.file_sha256(out / float_entry.file)
    policy = load_policy(REPO_ROOT / policy_file).with_qat_epochs(1)
    assert qat_entry.key == shipped.qat_key(policy, float_entry.sha256)
    assert qat_entry.sha256 == shipped.file_sha256(out / qat_entry.file)
    cost = json.loads(results.read_text())
    assert cost["float_epochs"] == 1 and cost["float_seconds"] > 0 and cost["provenance"]["cpu_count"] >= 1
    [row] = cost["policies"]
    assert row["qat_epochs"] == 1 and row["qat_seconds"] > 0 and 0 <= row["integer_accuracy"] <= 1


def test_with_qat_epochs_changes_the_epochs_and_the_quantization_hash():
    policy = load_policy(REPO_ROOT / shipped.SHIPPED_POLICIES[0])
    shorter = policy.with_qat_epochs(1)
    assert shorter.qat.epochs == shorter.document["qat"]["epochs"] == 1
    assert shorter.qat.lr == policy.qat.lr and shorter.layers == policy.layers
    assert shorter.quantization_hash != policy.quantization_hash
    assert policy.with_qat_epochs(policy.qat.epochs).quantization_hash == policy.quantization_hash

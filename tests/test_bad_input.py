"""Every class of bad input of issue 15 ends in one `error:` line and a non-zero exit, before any
training or build: malformed policy files, absurd numbers, unsafe names, bad checkpoints, and
measure arguments (image counts, output paths, a log another run holds, --resume logs)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness import cli
from harness.measure.log import RunLog
from harness.paths import POLICIES_DIR

DIGITS = json.loads((POLICIES_DIR / "digits-int8.json").read_text())


def _one_line_error(capsys, argv: list[str], *expected: str) -> str:
    """Run the CLI; it must fail with exactly one `error:` line holding every `expected` text."""
    started = time.monotonic()
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code != 0, captured
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    for text in expected:
        assert text in lines[0], lines[0]
    assert time.monotonic() - started < 20
    return lines[0]


def _policy(tmp_path: Path, document: object = None, *, text: str | None = None, data: bytes | None = None) -> Path:
    path = tmp_path / "policy.json"
    if data is not None:
        path.write_bytes(data)
    else:
        path.write_text(text if text is not None else json.dumps(document))
    return path


def _with(change: dict) -> dict:
    """DIGITS with dotted-path changes applied."""
    document = json.loads(json.dumps(DIGITS))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        target = document
        for key in parents:
            target = target[key]
        target[last] = value
    return document


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """Bad input must be refused before any quantizing, training or building starts."""
    import sys

    from harness.cli import build_parser

    def refuse(*args, **kwargs):
        raise AssertionError("training or building started on bad input")

    build_parser()  # every command module imported first, so none binds the stub beyond this test
    for name, module in list(sys.modules.items()):
        if name.startswith("harness.commands") and hasattr(module, "checked_policy_graph"):
            monkeypatch.setattr(module, "checked_policy_graph", refuse)
    monkeypatch.setattr("harness.build.firmware.build_graphs", refuse)


# ---- the policy file itself -------------------------------------------------------------------

@pytest.mark.parametrize("data, expected", [
    ("\ufeff{}".encode("utf-16"), "UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b'{"name": "d\xe9j\xe0"}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b"[" * 20 + b"]" * 20, "nested too deeply"),
    (b" " * (2 << 20), "more than a policy can be"),
], ids=["utf16", "binary", "latin1", "deep-100k", "deep-20", "huge"])
def test_unreadable_policy_files(tmp_path, capsys, data, expected):
    _one_line_error(capsys, ["policy", "check", str(_policy(tmp_path, data=data))], expected)


@pytest.mark.parametrize("text, expected", [
    ('{"input": {"bits": 8, "range": [NaN, 1]}}', "NaN is not a number"),
    ('{"input": {"bits": 8, "range": [-Infinity, 1]}}', "-Infinity is not a number"),
    ('{"input": {"bits": 8, "range": [-1e999, 1]}}', "not finite"),
    ('{"name": "a", "name": "b"}', "duplicate key 'name'"),
], ids=["nan", "infinity", "overflow", "duplicate-key"])
def test_json_that_python_would_accept_silently(tmp_path, capsys, text, expected):
    _one_line_error(capsys, ["policy", "check", str(_policy(tmp_path, text=text))], expected)


def test_a_named_pipe_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "policy.json"
    os.mkfifo(fifo)
    _one_line_error(capsys, ["policy", "check", str(fifo)], "not a regular file")


def test_a_directory_is_refused(tmp_path, capsys):
    _one_line_error(capsys, ["policy", "check", str(tmp_path)], "is a directory")


@pytest.mark.parametrize("change, expected", [
    ({"input.bits": 8.0}, "input.bits: must be an integer"),
    ({"layers.conv1.w_bits": "8"}, "layers.conv1.w_bits"),
    ({"model.args": {"width": 16.5}}, "argument 'width': must be an integer"),
    ({"model.args": {"width": "16"}}, "argument 'width': must be a number"),
    ({"model.args": {"width": 1e9}}, "argument 'width'"),
    ({"model.args": {"width": 1000000000}}, "argument 'width': must be in (0, 4096]"),
    ({"model.args": {"input_size": 0}}, "argument 'input_size'"),
    ({"budget.flash": 10 ** 30}, "budget.flash"),
    ({"budget.ram": "9" * 5000 + "MB"}, "budget.ram"),
    ({"budget.ram": "999999999999GB"}, "budget.ram: '999999999999GB' is more than"),
    ({"qat.seed": 2 ** 64}, "qat.seed"),
    ({"qat.epochs": 10 ** 9}, "qat.epochs"),
    ({"qat.epochs": 8.0}, "qat.epochs: must be an integer"),
    ({"qat.lr": 1e300}, "qat.lr"),
    ({"input.range": [-1e300, 1.0]}, "input.range[0]"),
    ({"name": "digits\n\x1b[31mred"}, "name"),
    ({"name": "../../outside"}, "name"),
    ({"name": "a/b"}, "name"),
    ({"description": "bell \x07"}, "description"),
], ids=lambda value: str(value)[:40])
def test_out_of_range_and_unsafe_fields_name_the_field(tmp_path, capsys, change, expected):
    line = _one_line_error(capsys, ["policy", "check", str(_policy(tmp_path, _with(change)))], expected)
    assert "\x1b" not in line


# ---- checkpoints (policy check loads them) ------------------------------------------------------

@pytest.mark.parametrize("kind, expected", [
    ("text", "not a torch state_dict"),
    ("garbage", "not a torch state_dict"),
    ("directory", "is a directory"),
    ("other-model", "does not match"),
    ("missing", "no such file"),
])
def test_bad_checkpoints_are_found_by_policy_check(tmp_path, capsys, kind, expected):
    checkpoint = tmp_path / "weights.pt"
    if kind == "text":
        checkpoint.write_text("these are not weights\n")
    elif kind == "garbage":
        checkpoint.write_bytes(bytes(range(256)) * 8)
    elif kind == "directory":
        checkpoint.mkdir()
    elif kind == "other-model":
        import torch
        torch.save({"state_dict": {"features.0.weight": torch.zeros(3, 3)}}, checkpoint)
    path = _policy(tmp_path, _with({"model.checkpoint": "weights.pt"}))
    _one_line_error(capsys, ["policy", "check", str(path)], expected)


# ---- measure's arguments ----------------------------------------------------------------------

MIXED = str(POLICIES_DIR / "digits-mixed.json")


@pytest.mark.parametrize("count, expected", [
    ("0", "--images must be 1 .."), ("-5", "--images must be 1 .."), ("1000000", "--images must be 1 .."),
    ("451", "--images must be 1 .. 450 (the test split)"),
])
def test_image_counts_are_checked_before_anything_runs(tmp_path, capsys, count, expected):
    _one_line_error(capsys, ["measure", MIXED, "--images", count, "--out", str(tmp_path / "r.json")], expected)


def test_an_out_that_is_a_directory_is_refused_first(tmp_path, capsys):
    _one_line_error(capsys, ["measure", MIXED, "--out", str(tmp_path)], "--out", "is a directory")


def test_an_out_that_cannot_be_created_is_refused_first(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    _one_line_error(capsys, ["measure", MIXED, "--out", str(blocker / "r.json")], "--out", "not a writable directory")


def test_two_runs_cannot_share_a_log(tmp_path, capsys):
    log = tmp_path / "shared.jsonl"
    with RunLog(log):
        _one_line_error(capsys, ["measure", MIXED, "--images", "3", "--log", str(log)], "another run is writing it")



@pytest.mark.parametrize("board, baud, expected", [
    ("qemu-m7", "115200", "board qemu-m7 (qemu backend) has no UART baud rate to choose"),
    ("nucleo-h743", "50", "--baud must be 1200 .. 15000000, got 50"),
])
def test_measure_refuses_a_baud_rate_it_cannot_use(capsys, tmp_path, board, baud, expected):
    _one_line_error(capsys, ["measure", MIXED, "--board", board, "--baud", baud, "--out", str(tmp_path / "r.json")],
                    expected)


def test_a_bad_fault_option_is_refused_first(tmp_path, capsys):
    _one_line_error(capsys, ["measure", MIXED, "--link-faults", "rate=2", "--out", str(tmp_path / "r.json")],
                    "--link-faults", "rate must be 0 .. 0.5")


@pytest.mark.parametrize("records, expected", [
    ([], "holds no run"),
    ([{"event": "start", "run_id": "r1", "policy": MIXED, "board": "qemu-m7", "images": 3},
      {"event": "end", "run_id": "r1"}], "already completed"),
    ([{"event": "start", "run_id": "r1", "policy": MIXED, "board": "qemu-m7", "images": 3},
      {"event": "image", "run_id": "r1", "index": 1}], "gaps"),
])
def test_resume_refuses_logs_it_cannot_continue(tmp_path, capsys, records, expected):
    log = tmp_path / "run.jsonl"
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    _one_line_error(capsys, ["measure", "--resume", str(log)], "--resume", expected)


def test_resume_refuses_another_policy(tmp_path, capsys, monkeypatch):
    log = tmp_path / "run.jsonl"
    log.write_text(json.dumps({"event": "start", "run_id": "r1", "policy": MIXED, "policy_hash": "0" * 16,
                               "board": "qemu-m7", "images": 3}) + "\n")
    _one_line_error(capsys, ["measure", "--resume", str(log)], "--resume", "policy_hash")

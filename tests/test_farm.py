"""The farm (harness.farm, docs/farm.md): two local QEMU boards measure like one, a killed
board's images are measured on the other, and without `--farm` Ray is never imported."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.processes import qemu_children

from harness.cli import main
from harness.errors import HarnessError
from harness.paths import POLICIES_DIR, REPO_ROOT

MIXED = POLICIES_DIR / "digits-mixed.json"
IMAGES = 300


def _records(path: Path, event: str) -> list[dict]:
    return [record for record in map(json.loads, path.read_text().splitlines()) if record["event"] == event]


def _images(path: Path) -> list[dict]:
    """The image records (index, label, classes, bit-exactness, ticks, layer ticks, output hash)
    without what differs between any two runs: the run id, and how often the link disturbed a RUN."""
    return [{key: value for key, value in record.items() if key not in ("run_id", "remeasured")}
            for record in _records(path, "image")]


@pytest.fixture(scope="module")
def one_board(tmp_path_factory, board_name) -> list[dict]:
    """The image records of a single-board run of IMAGES digits images."""
    if board_name != "qemu-m7":
        pytest.skip("a local farm of two boards needs an emulated board (qemu-m7)")
    log = tmp_path_factory.mktemp("one") / "one.jsonl"
    assert main(["measure", str(MIXED), "--board", board_name, "--images", str(IMAGES), "--log", str(log)]) == 0
    return _images(log)


@pytest.mark.device
@pytest.mark.tools("ray")
@pytest.mark.slow
def test_two_boards_measure_exactly_like_one(tmp_path, one_board, capsys):
    out = tmp_path / "farm.json"
    assert main(["measure", str(MIXED), "--images", str(IMAGES), "--out", str(out), "--farm", "--farm-boards", "2"]) == 0
    report, log = json.loads(out.read_text()), out.with_suffix(".jsonl")
    assert _images(log) == one_board, "same outputs and ticks, image by image, in index order"
    [start] = _records(log, "start")
    assert len(start["farm"]) == 2 and {r["run_id"] for r in _records(log, "image")} == {start["run_id"]}
    assert len(report["farm"]) == 2 and sum(report["farm"].values()) == IMAGES, report["farm"]
    assert report["bit_exact"] == IMAGES
    assert "measured on qemu-m7#0" in capsys.readouterr().out


@pytest.fixture(scope="module")
def local_farm(one_board):
    """Ray started in this process with two qemu-m7 boards, and the digits policy's graph and images."""
    from harness.datasets.measured import measured_inputs
    from harness.farm.cluster import connected
    from harness.policy import load_policy
    from harness.quantize.pipeline import graph_for_policy

    policy = load_policy(MIXED)
    graph = graph_for_policy(policy)
    with connected(None, {"qemu-m7": 2}):
        yield (policy, graph, *measured_inputs(policy, graph, IMAGES))


def _measure_killing(tmp_path: Path, local_farm, images: int, victims: int, at_index: int):
    """Measure `images` on a pool of the local farm, SIGKILLing the QEMU of `victims` workers once
    image `at_index` is logged; (log path, lost-worker messages, report or the HarnessError)."""
    from harness.backends import load_board
    from harness.farm.measure import farm_measure
    from harness.farm.pool import BoardPool
    from harness.measure.log import RunLog

    policy, graph, inputs, labels = local_farm
    lost, killed = [], []
    with BoardPool("qemu-m7", on_lost=lost.append) as pool:
        def kill(result) -> None:
            if result.index == at_index:
                for worker in sorted(pool.pids)[:victims]:
                    for qemu in qemu_children(pool.pids[worker]):
                        os.kill(qemu, signal.SIGKILL)
                        killed.append(qemu)

        with RunLog(tmp_path / "killed.jsonl") as log:
            try:
                outcome = farm_measure(pool, policy, graph, load_board("qemu-m7"), inputs[:images], labels[:images],
                                       log, kill)
            except HarnessError as error:
                outcome = error
    assert len(killed) == victims, "every victim's QEMU was found and killed"
    return tmp_path / "killed.jsonl", lost, outcome


@pytest.mark.device
@pytest.mark.tools("ray")
@pytest.mark.slow
def test_a_killed_board_s_images_are_measured_on_the_other_without_loss_or_duplicates(tmp_path, one_board,
                                                                                      local_farm):
    log, lost, report = _measure_killing(tmp_path, local_farm, 120, victims=1, at_index=30)
    assert not isinstance(report, Exception), report
    assert len(lost) == 1 and "QEMU" in lost[0] and "another qemu-m7 board" in lost[0], lost
    assert _images(log) == one_board[:120], "every image once, in order, as on one board"
    assert report["bit_exact"] == 120 and sum(report["farm"].values()) == 120
    assert len(_records(log, "end")) == 1 and not _records(log, "error")


@pytest.mark.device
@pytest.mark.tools("ray")
@pytest.mark.slow
def test_no_board_of_the_kind_left_fails_in_one_line_keeping_what_was_logged(tmp_path, one_board, local_farm):
    from harness.farm.pool import BoardPool

    log, lost, error = _measure_killing(tmp_path, local_farm, IMAGES, victims=2, at_index=0)
    assert isinstance(error, HarnessError) and "no qemu-m7 board of the farm is left" in str(error), error
    assert "\n" not in str(error) and len(lost) == 2
    images = _images(log)
    assert images == one_board[:len(images)] and len(images) >= 1, "what was logged stays, in order, once"
    [record] = _records(log, "error")
    assert record["next"] == len(images)
    with pytest.raises(HarnessError, match="the farm has no nucleo-h743 board .*qemu-m7: 2"):
        BoardPool("nucleo-h743")


@pytest.mark.device
def test_without_farm_ray_is_not_imported(tmp_path):
    script = (f"import sys; from harness.cli import main; "
              f"code = main(['measure', {str(MIXED)!r}, '--random-weights', '--images', '2', "
              f"'--log', {str(tmp_path / 'run.jsonl')!r}]); "
              "assert 'ray' not in sys.modules, 'ray was imported'; sys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]


def test_farm_options_are_checked_in_one_line_before_any_work(tmp_path, capsys):
    for argv, expected in (
            (["measure", str(MIXED), "--farm", "--farm-boards", "0", "--log", str(tmp_path / "a.jsonl")],
             "--farm-boards must be 1 .. 8"),
            (["search", "--method", "memory-driven", "--farm"], "--farm works with --method haq"),
            (["farm", "up", "--boards", "qemu-m7"], "is not NAME:COUNT"),
            (["farm", "up", "--boards", "no-such-board:1"], "no-such-board")):
        assert main(argv) == 2, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], (argv, lines)


@pytest.mark.device
@pytest.mark.tools("ray")
@pytest.mark.slow
def test_profile_on_the_farm_uses_both_boards_and_matches_one_board(tmp_path, monkeypatch, board, local_farm):
    from harness.farm.pool import BoardPool
    from harness.farm.profile import farm_profile
    from harness.ir.random_graphs import random_chain_graph
    from harness.measure.profile import profile, profile_graphs

    graph = random_chain_graph(11, blocks=1)
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "farm"))  # empty tables: everything is measured
    with BoardPool("qemu-m7") as pool:
        answers = []
        table, measured = farm_profile(pool, graph, board, lambda done, total: answers.append(done))
    assert measured == len(profile_graphs(graph)) and not table.missing(graph)
    assert len(answers) == 3, "one progress call at the start and one per board's image"
    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "one"))
    one, _ = profile(graph, board)
    assert table.entries == one.entries and sorted(table.overheads) == sorted(one.overheads)


@pytest.mark.device
@pytest.mark.tools("ray")
@pytest.mark.slow
def test_haq_verifies_its_candidates_on_both_boards(tmp_path, local_farm):
    from harness.backends import load_board
    from harness.farm.pool import BoardPool
    from harness.search.haq import LOG_NAME, HaqSettings, read_log, search

    # one episode, one candidate of 40 images: two chunks, one per board (each candidate's fine-tune takes minutes)
    settings = HaqSettings("digits-cnn", {}, "2MB", "512kB", "qemu-m7", 1, 1.0, None, 0, top_k=1, verify_images=40)
    with BoardPool("qemu-m7") as pool:
        summary = search(settings, tmp_path / "run", load_board("qemu-m7"), pool=pool)
    [verified] = summary["verified"]
    assert verified["bit_exact"] == verified["images"] == 40 and verified["fits"]
    assert len(verified["measured_on"]) == 2 and sum(verified["measured_on"].values()) == 40, \
        "the log shows both workers"
    assert [r for r in read_log(tmp_path / "run" / LOG_NAME) if r["event"] == "verified"] == [verified]

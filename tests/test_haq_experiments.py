"""tools/haq_experiments.py on a tiny budget: the documented must-show runs' script works end to end
(searches, board measurements of the chosen policies, results file, reward-curve PNG)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))


@pytest.mark.device
@pytest.mark.slow
def test_haq_experiments_script_on_a_tiny_budget(tmp_path):
    import haq_experiments

    assert haq_experiments.main(["--experiments", "mnist", "mnist-latency", "--latency-flash", "110kB",
                                 "--episodes", "2", "--warmup", "1", "--seeds", "0",
                                 "--mnist-images", "2", "--out-dir", str(tmp_path / "results"),
                                 "--runs-dir", str(tmp_path / "runs")]) == 0
    latency = json.loads((tmp_path / "results" / "haq-mnist-latency.json").read_text())
    assert latency["complete"] and latency["budget"] == "110kB / 34kB" and latency["flash_budget"] == 110 * 1024
    assert latency["provenance"]["git_commit"] and latency["provenance"]["board"] == "qemu-m7"
    assert [(r["method"], r["latency_weight"], r["name"]) for r in latency["runs"]] == [
        ("haq", 0.0, "lenet5-mnist-haq-w0-s0-latency"), ("haq", 2.0, "lenet5-mnist-haq-w2-s0-latency")]
    assert "haq_vs_random" not in latency and latency["latency_weight"]["weight_0"] == [
        latency["runs"][0]["measured_latency"]]
    result = json.loads((tmp_path / "results" / "haq-mnist.json").read_text())
    assert result["complete"] and result["binding"] == {"flash": True, "ram": True}
    assert [(r["method"], r["latency_weight"]) for r in result["runs"]] == [("haq", 0.0), ("random", 0.0),
                                                                           ("haq", 2.0)]
    for run in result["runs"]:
        assert run["episodes"] == 2 and len(run["best_so_far"]) == 2 and run["fits"]
        assert run["bit_exact"] == run["images"] == 2 and run["measured_latency"] > 0
        assert run["flash_bytes"] <= result["flash_budget"] and run["ram_bytes"] <= result["ram_budget"]
        assert run["reference"]["measured_latency"] > 0 and run["reference"]["accuracy"] > 0.5
    (versus,) = result["haq_vs_random"]
    assert versus["haq_wins"] == (versus["haq"] > versus["random"])
    random_run = result["runs"][1]
    assert 1 <= versus["evaluations"] <= 2 and versus["random_at_evaluations"] in random_run["best_per_evaluation"]
    assert versus["haq_wins_at_evaluations"] == (versus["haq"] > versus["random_at_evaluations"])
    weight = result["latency_weight"]
    assert weight["drops_more_than_spread"] == (weight["mean_drop"] > weight["spread_at_0"])
    assert weight["fastest_predicted"] == min(run["fastest_predicted"] for run in result["runs"])
    assert all(run["fastest_predicted"] <= run["predicted_latency"] for run in result["runs"])
    assert (tmp_path / "results" / "haq-reward-curves.png").stat().st_size > 10_000
    assert weight["every_raised_faster"] == (max(weight["raised_latencies"]) < min(weight["weight_0"]))
    from harness.backends import load_board

    fields = haq_experiments.runs_of("mnist", haq_experiments.parse_args([]))[0]
    for run in result["runs"]:  # the free flash was given back: what is left costs latency to use
        cheapest = haq_experiments.cheapest_raise(run, fields, result["flash_budget"], result["ram_budget"],
                                                  load_board("qemu-m7"))
        assert cheapest is None or (cheapest["latency_change"] > 0
                                    and cheapest["flash_bytes"] <= result["flash_budget"])


def test_a_budget_the_model_cannot_meet_is_one_line_and_no_results_file(tmp_path, capsys, monkeypatch):
    import haq_experiments

    monkeypatch.setenv("MPQ_HARNESS_CACHE", str(tmp_path / "cache"))  # a cold cache: nothing is built first

    out = tmp_path / "results"
    assert haq_experiments.main(["--experiments", "mnist", "--mnist-model", "dsnet-mnist", "--mnist-flash", "60kB",
                                 "--mnist-ram", "32kB", "--episodes", "2", "--seeds", "0", "--out-dir", str(out),
                                 "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "does not fit the budget" in err, err
    assert not (out / "haq-mnist.json").exists()

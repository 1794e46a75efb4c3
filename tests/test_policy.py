"""Policy files: the shipped ones load, malformed ones give one line naming the problem."""
import copy
import json

import jsonschema
import pytest

from harness import cli
from harness.paths import POLICIES_DIR
from harness.policy import SCHEMA_PATH, LayerBits, load_policy, parse_policy, policy_hash

INT8 = POLICIES_DIR / "digits-int8.json"
MIXED = POLICIES_DIR / "digits-mixed.json"


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


def test_shipped_policies_load():
    int8, mixed = load_policy(INT8), load_policy(MIXED)
    assert int8.budget.flash == 2 * 1024**2 and int8.budget.ram == 512 * 1024
    assert {bits.w_bits for bits in int8.layers.values()} == {8, None}
    assert int8.layers["fc"].a_bits is None and int8.layers["pool"].w_bits is None
    assert int8.input.scale == pytest.approx(2 / 255) and int8.input.zero_point in (127, 128)
    weight_bits = {bits.w_bits for bits in mixed.layers.values()}
    activation_bits = {bits.a_bits for bits in mixed.layers.values()}
    assert {2, 4} <= weight_bits and {2, 4} <= activation_bits


def test_hash_is_canonical():
    document = json.loads(INT8.read_text())
    reordered = dict(reversed(list(document.items())))
    assert policy_hash(reordered) == policy_hash(document) == load_policy(INT8).hash
    assert len(policy_hash(document)) == 16
    changed = copy.deepcopy(document)
    changed["layers"]["pw2"]["w_bits"] = 4
    assert policy_hash(changed) != policy_hash(document)


def test_input_quantization_from_range():
    document = json.loads(INT8.read_text())
    document["input"] = {"bits": 4, "range": [0.0, 3.0]}
    quant = parse_policy(document).input
    assert (quant.scale, quant.zero_point, quant.levels) == (pytest.approx(0.2), 0, 15)
    document["input"] = {"bits": 2, "range": [-1.5, 1.5]}
    quant = parse_policy(document).input
    assert (quant.scale, quant.zero_point) == (pytest.approx(1.0), 2)  # round(1.5) = 2


def _mutate(path: list, value) -> dict:
    document = json.loads(INT8.read_text())
    target = document
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


class _Delete:
    """The value that removes a field (its repr names the test case the same in every process)."""

    def __repr__(self) -> str:
        return "deleted"


DELETE = _Delete()
MALFORMED = [
    (["budget"], DELETE, ["budget", "missing"]),
    (["layers", "conv1", "w_bits"], 3, ["layers.conv1.w_bits", "3 is not one of [2, 4, 8]"]),
    (["layers", "pool", "a_bits"], 3, ["layers.pool.a_bits", "3 is not one of [2, 4, 8]"]),
    (["input", "bits"], 1, ["input.bits", "1 is not one of"]),
    (["budget", "flash"], "-2MB", ["budget.flash", "negative"]),
    (["budget", "ram"], -5, ["budget.ram", "negative"]),
    (["budget", "ram"], 0, ["budget.ram", "positive"]),
    (["budget", "flash"], "2 parsecs", ["budget.flash", "parsecs"]),
    (["model", "zoo"], "resnet9000", ["model.zoo", "unknown model 'resnet9000'"]),
    (["model", "args"], {"depth": 3}, ["model.args", "'depth'"]),
    (["model", "checkpoint"], "missing.pt", ["model.checkpoint", "no such file"]),
    (["layers", "fc", "a_bits"], 8, ["layers.fc.a_bits", "32-bit logits"]),
    (["layers", "pool", "w_bits"], 8, ["layers.pool.w_bits", "no weights"]),
    (["layers", "conv9"], {"w_bits": 8, "a_bits": 8}, ["layers.conv9", "no such layer"]),
    (["model"], {}, ["model", "either `zoo`"]),
    (["model"], {"zoo": "digits-cnn", "file": "m.onnx"}, ["model", "either `zoo`"]),
    (["model"], {"file": "missing.tflite"}, ["model.file", "no such model file"]),
    (["model"], {"file": "model.h5"}, ["model.file", "unknown model format"]),
    (["input", "range"], [1.0, -1.0], ["input.range", "below"]),
    (["qat", "epochs"], -1, ["qat.epochs", "minimum"]),
    (["surprise"], 1, ["surprise", "unknown field"]),
]


def test_left_out_layers_and_fields_default_to_8_bits():
    document = _mutate(["layers", "pw2"], DELETE)
    del document["layers"]["dw1"]["a_bits"]
    layers = parse_policy(document).layers
    assert (layers["pw2"].w_bits, layers["pw2"].a_bits) == (8, 8)
    assert layers["dw1"].a_bits == 8
    all_default = parse_policy({key: value for key, value in document.items() if key != "layers"})
    assert all_default.layers["fc"] == LayerBits(8, None)  # the classifier: int32 logits
    assert all_default.layers["pool"] == LayerBits(None, 8)  # no weights


@pytest.mark.parametrize("path, value, expected", MALFORMED, ids=[".".join(m[0]) + f"={m[1]!r}" for m in MALFORMED])
def test_malformed_policy_gives_one_line_error(tmp_path, capsys, path, value, expected):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(_mutate(path, value)))
    assert cli.main(["policy", "check", str(policy_file)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err and captured.out == ""
    assert lines[0].startswith(f"error: {policy_file}: ")
    for text in expected:
        assert text in lines[0]


@pytest.mark.parametrize("content, expected", [("{\"model\": ", "not valid JSON"), ("[1, 2]", "not of type 'object'")])
def test_unreadable_policy_gives_one_line_error(tmp_path, capsys, content, expected):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(content)
    assert cli.main(["policy", "check", str(policy_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err


def test_missing_policy_file(tmp_path, capsys):
    assert cli.main(["policy", "check", str(tmp_path / "absent.json")]) == 2
    assert "no such policy file" in capsys.readouterr().err


@pytest.mark.parametrize("policy_file", [INT8, MIXED], ids=["int8", "mixed"])
def test_policy_check_prints_table_and_fits(capsys, policy_file):
    assert cli.main(["policy", "check", str(policy_file)]) == 0
    out = capsys.readouterr().out
    for text in ("conv1", "dw1", "pw2", "pool", "fc", "MACs", "flash", "RAM", "arena", "simple bound", "fits"):
        assert text in out


@pytest.mark.parametrize("budget, over", [({"flash": "16kB", "ram": "512kB"}, "flash"),
                                          ({"flash": "2MB", "ram": "4kB"}, "RAM")])
def test_policy_over_budget_exits_1_naming_the_budget(tmp_path, capsys, budget, over):
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(_mutate(["budget"], budget)))
    assert cli.main(["policy", "check", str(policy_file)]) == 1
    err = capsys.readouterr().err
    assert "does not fit" in err and f"{over} needs" in err and "over the" in err


def test_budget_and_name_do_not_change_the_quantization_hash():
    """A new budget or name reuses the trained graph; new bits do not."""
    from harness.paths import POLICIES_DIR
    from harness.policy import parse_policy

    document = json.loads((POLICIES_DIR / "digits-mixed.json").read_text())
    base = parse_policy(document)
    renamed = parse_policy(document | {"name": "other", "budget": {"flash": "1MB", "ram": "256kB"}})
    rebitted = parse_policy(document | {"layers": document["layers"] | {"pw2": {"w_bits": 4, "a_bits": 2}}})
    assert renamed.hash != base.hash and renamed.quantization_hash == base.quantization_hash
    assert rebitted.quantization_hash != base.quantization_hash

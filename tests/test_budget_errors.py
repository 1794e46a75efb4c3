"""A policy too big for its budget or its board fails before building, naming the budget."""
import json

import pytest

from harness.cli import main
from harness.paths import POLICIES_DIR


def _policy_with_budget(tmp_path, flash: str, ram: str):
    document = json.loads((POLICIES_DIR / "digits-mixed.json").read_text())
    document["budget"] = {"flash": flash, "ram": ram}
    path = tmp_path / "tight.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize("flash, ram, named", [("4kB", "512kB", "flash"), ("2MB", "2kB", "RAM")])
def test_build_refuses_a_policy_over_its_budget(tmp_path, capsys, flash, ram, named):
    code = main(["build", str(_policy_with_budget(tmp_path, flash, ram)), "--board", "qemu-m7"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("error: ") and "budget" in err[-1] and named in err[-1], err[-1]
    assert not any("Traceback" in line for line in err)


def test_build_refuses_a_policy_over_the_boards_budget(tmp_path, capsys):
    board = tmp_path / "small-m7.toml"
    text = (POLICIES_DIR.parent / "boards" / "qemu-m7.toml").read_text()
    board.write_text(text.replace('name = "qemu-m7"', 'name = "small-m7"').replace('[budget]\nflash = "2MB"', '[budget]\nflash = "8kB"'))
    code = main(["build", str(POLICIES_DIR / "digits-mixed.json"), "--board", str(board)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and "board small-m7" in err[-1] and "flash" in err[-1], err[-1]

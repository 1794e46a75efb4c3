"""docs/models.md, "Your own model": every `$ harness ...` command and Python block of the section,
run in order in a scratch folder (with tests/ linked in, so the relative paths of the docs work);
each must succeed. The measure commands run on qemu-m7 (about 40 s in all)."""
import os
import re
import shlex

import pytest

from harness.cli import main
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.device
DOC = REPO_ROOT / "docs" / "models.md"


def section_blocks() -> list[tuple[str, str]]:
    """(language, text) of the fenced blocks of the section, in order."""
    text = DOC.read_text()
    section = text[text.index("## Your own model"):]
    section = section[:section.index("\n## ", 3)]
    return re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)


def test_the_section_has_commands_to_run():
    blocks = section_blocks()
    assert sum(language == "python" for language, _ in blocks) == 1
    assert sum(line.startswith("$ harness ") for _, text in blocks for line in text.splitlines()) >= 6


def test_commands_of_your_own_model_run(tmp_path, monkeypatch, board_name):
    pytest.importorskip("torch")
    if board_name != "qemu-m7":
        pytest.skip("the documented commands name --board qemu-m7")
    (tmp_path / "tests").symlink_to(REPO_ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    for language, text in section_blocks():
        if language == "python":
            exec(compile(text, str(DOC), "exec"), {"__name__": "docs_models"})
            assert os.path.isfile("user.onnx")
            continue
        for line in text.splitlines():
            if line.startswith("$ harness "):
                assert main(shlex.split(line)[2:]) == 0, line

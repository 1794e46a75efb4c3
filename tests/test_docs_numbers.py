"""Numbers in the docs are produced, not typed: every generated block equals what tools/docs.py
writes from the committed results files, and every results file says which command wrote it."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from harness.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("docs_tool", REPO_ROOT / "tools" / "docs.py")
docs_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(docs_tool)


def test_generated_blocks_match_the_results_files():
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "docs.py"), "check"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_block_has_a_generator_and_every_source_names_its_command():
    names = {match["name"] for path in docs_tool.DOCUMENTS for match in docs_tool.blocks(path.read_text())}
    assert names and names <= set(docs_tool.GENERATORS)
    for name in names:
        for source in docs_tool.SOURCES[name]:
            report = json.loads((docs_tool.RESULTS / source).read_text())
            command = report["provenance"]["command"]
            assert command.startswith(("harness ", "python tools/")), f"{source}: written by {command!r}"


def test_a_hand_edited_number_is_caught(tmp_path):
    text = "x\n<!-- generated: network-digits -->\n| typed | 1 |\n<!-- end generated: network-digits -->\n"
    assert docs_tool.render(text) != text
    assert docs_tool.render(docs_tool.render(text)) == docs_tool.render(text)

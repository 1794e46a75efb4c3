"""harness.files.write_atomic: the generated sources, the accuracy cache and the latency table are
shared by concurrent processes, which must never read half a file."""
import multiprocessing

import pytest

from harness.files import write_atomic

TEXTS = ("a" * 200_000, "b" * 300_000)


def _write_many(path: str, text: str) -> None:
    for _ in range(50):
        write_atomic(path, text)


def test_a_reader_sees_one_whole_version_while_two_processes_rewrite_the_file(tmp_path):
    path = tmp_path / "model.c"
    write_atomic(path, TEXTS[0])
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_many, args=(str(path), text)) for text in TEXTS]
    for writer in writers:
        writer.start()
    seen = set()
    while any(writer.is_alive() for writer in writers):
        seen.add(path.read_text())
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert seen <= set(TEXTS), "a reader saw a partly written file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.c"], "no staging file is left"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_staging_file(tmp_path):
    path = tmp_path / "scores.json"
    write_atomic(path, "old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "\udcff")  # a lone surrogate cannot be encoded
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.json"]


def test_bytes_are_written_as_they_are(tmp_path):
    path = tmp_path / "agent.pkl"
    write_atomic(path, bytes(range(256)) * 4)
    assert path.read_bytes() == bytes(range(256)) * 4

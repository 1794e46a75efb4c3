"""Training progress: one readable line per epoch, with the ETA, where stderr is not a terminal
(CI logs); a rich bar with the ETA on a terminal; nothing without a log."""
import re

from harness.frontend.training_progress import TrainingProgress


def _run(log, terminal: bool, epochs: int = 3, steps: int = 4) -> None:
    with TrainingProgress("QAT of digits-mixed", epochs, steps, log, terminal=terminal) as shown:
        for epoch in range(epochs):
            for _ in range(steps):
                shown.step()
            shown.epoch(epoch + 1, 1.0 / (epoch + 1))


def test_plain_lines_per_epoch_with_elapsed_time_and_eta():
    lines = []
    _run(lines.append, terminal=False)
    assert len(lines) == 3
    pattern = r"QAT of digits-mixed: epoch (\d)/3: loss \d\.\d{4} \(\d+ s, ETA \d+ s\)"
    assert [int(re.fullmatch(pattern, line).group(1)) for line in lines] == [1, 2, 3], lines
    assert lines[-1].endswith("ETA 0 s)")


def test_a_terminal_gets_a_bar_with_the_eta_instead_of_lines(capsys):
    lines = []
    _run(lines.append, terminal=True)
    assert lines == []
    shown = capsys.readouterr().err
    assert "QAT of digits-mixed" in shown and "12/12" in shown and "ETA" in shown and "epoch 3/3 loss 0.3333" in shown


def test_silent_without_a_log(capsys):
    _run(None, terminal=True)
    assert capsys.readouterr().err == ""


"""Which snapshots a run keeps: the default rule fits them to the steps, an explicit list is checked."""

from __future__ import annotations

import pytest

from filtviz_core import algorithm as alg
from filtviz_core.cli_common import parse_steps
from filtviz_core.errors import FiltvizError


def test_default_keeps_those_that_fit_plus_the_last_step():
    assert alg.snapshot_steps(None, 50) == (10, 50)
    assert alg.snapshot_steps(alg.DEFAULT_SNAPSHOTS, 50) == (10, 50)  # the functions' default argument
    assert alg.snapshot_steps(None, 5) == (5,)
    assert alg.snapshot_steps(None, 200) == (10, 100, 200)


@pytest.mark.parametrize("explicit", [[10, 100], (10, 100), [100, 10]])
def test_explicit_list_past_the_end_is_refused_whatever_its_order(explicit):
    with pytest.raises(FiltvizError, match=r"snapshots \[100\] lie outside 0..50"):
        alg.snapshot_steps(explicit, 50)


def test_explicit_list_within_the_steps_is_kept_sorted():
    assert alg.snapshot_steps([100, 10], 100) == (10, 100)
    assert alg.snapshot_steps((), 50) == ()


def test_command_line_default_is_the_default_rule_and_an_explicit_list_is_checked():
    """No ``--snapshots``: the default rule (fitted to ``--steps 50``); ``--snapshots 10,100`` given: checked."""
    assert alg.snapshot_steps(parse_steps(None), 50) == (10, 50)
    assert parse_steps("0,5") == (0, 5)
    with pytest.raises(FiltvizError, match=r"snapshots \[100\] lie outside 0..50"):
        alg.snapshot_steps(parse_steps("10,100"), 50)


def test_both_command_lines_check_an_explicit_list(capsys, tmp_path):
    from tf_reference.cli import main as tf_main
    from torch_filtviz.cli import main as torch_main

    for main in (torch_main, tf_main):
        code = main(
            [
                "filters",
                "block1_conv2",
                "--filters",
                "0",
                "--steps",
                "50",
                "--snapshots",
                "10,100",
                "--out",
                str(tmp_path / "out"),
            ]
        )
        err = capsys.readouterr().err
        assert code == 2 and "lie outside 0..50" in err and err.count("\n") == 1, err
        assert not (tmp_path / "out").exists()

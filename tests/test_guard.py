"""The small commands' argparse (ArgParser): one-line errors, and each long option in both
spellings, ``--top-k`` and ``--top_k``, as train.py spells its flags."""

from __future__ import annotations

import pytest

from mlcycle.commands.guard import ArgParser


def parser() -> ArgParser:
    p = ArgParser(prog="demo.py")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--run_dir")
    p.add_argument("--out")
    return p


def test_either_spelling_of_a_long_option_is_accepted():
    args = parser().parse_args(["--top_k", "2", "--run-dir=runs/x"])
    assert args.top_k == 2 and args.run_dir == "runs/x"
    assert parser().parse_args(["--top-k=5", "--run_dir", "r"]).top_k == 5


def test_help_lists_one_spelling(capsys):
    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "--top-k" in out and "--top_k" not in out and "--run-dir" not in out


def test_an_unknown_option_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["--top_q", "2"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: unrecognized arguments: --top_q 2")


def test_passthrough_keys_keep_their_spelling():
    args, extra = parser().parse_passthrough(["--out", "o", "--data.batch_size=4", "--", "--x_y"])
    assert args.out == "o" and extra == ["--data.batch_size=4", "--", "--x_y"]

"""The commands' typed command line (commands/parser.CommandParser, jsonargparse): one-line
errors naming the closest key or the command a key belongs to, each long option in both
spellings (``--top-k`` and ``--top_k``), composable ``--config`` files, and the keys a command
passes on to train.py."""

from __future__ import annotations

import pytest

from mlcycle.commands.parser import CommandParser
from mlcycle.core.errors import UserError


def parser() -> CommandParser:
    p = CommandParser("demo", "A demo command.")
    p.add_argument("--top_k", type=int, default=3, help="classes per image")
    p.add_argument("--run_dir", type=str | None, default=None)
    p.add_argument("--out", type=str | None, default=None)
    p.add_argument("--force", action="store_true")
    p.add_repeatable("note", "a note (repeatable)")
    return p


def test_either_spelling_of_a_long_option_is_accepted():
    args = parser().parse(["--top-k", "2", "--run-dir=runs/x", "--force"])
    assert args.top_k == 2 and args.run_dir == "runs/x" and args.force is True
    assert parser().parse(["--top_k=5", "--run_dir", "r"]).top_k == 5


def test_help_lists_each_key_with_its_type_and_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse(["--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and out.startswith("usage: mlcycle demo")
    assert "--top_k TOP_K" in out and "type: int, default: 3" in out and "--top-k" not in out


def test_config_files_compose_and_the_command_line_wins(tmp_path, capsys):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("top_k: 4\nout: o\nnote: [x]\n")
    second.write_text("top_k: 5\n")
    args = parser().parse(["--config", str(first), "--config", str(second), "--note", "y"])
    assert (args.top_k, args.out, args.note) == (5, "o", ["x", "y"])
    assert parser().parse(["--config", str(first), "--top_k", "6"]).top_k == 6
    with pytest.raises(SystemExit):
        parser().parse(["--config", str(first), "--print_config"])
    assert "top_k: 4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--top_q", "2"],
            "unknown option '--top_q'; did you mean '--top_k'? (see mlcycle demo --help)",
        ),  # fmt: skip
        (
            ["--top_k", "two"],
            "key 'top_k': expected an integer, got 'two' (see mlcycle demo --help)",
        ),  # fmt: skip
        (
            ["--quantize", "int8"],
            "--quantize is an option of mlcycle export, not of mlcycle demo",
        ),  # fmt: skip
    ],
)
def test_a_bad_key_is_one_line(argv, message):
    with pytest.raises(UserError) as exc:
        parser().parse(argv)
    assert str(exc.value) == message


def test_a_bad_key_in_a_config_file_is_named(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("top_kk: 4\n")
    with pytest.raises(UserError, match=r"unknown key 'top_kk'; did you mean 'top_k'\?"):
        parser().parse(["--config", str(config)])


def test_passthrough_keys_keep_their_spelling():
    args, extra = parser().split(
        ["--out", "o", "--data.batch_size=4", "--data.root", "r", "--top-k", "2", "--", "--x_y"]
    )
    assert args.out == "o" and args.top_k == 2
    assert extra == ["--data.batch_size=4", "--data.root", "r", "--", "--x_y"]
    with pytest.raises(UserError, match="unknown option '-q'"):
        parser().split(["-q"])

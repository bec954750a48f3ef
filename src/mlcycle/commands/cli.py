"""``mlcycle <command> [args]``: the one command; each command runs as its ``scripts/<name>.py``.

The table below is static, so ``mlcycle --help`` imports no command (it answers at once); a
command's module is imported only when it runs. The command gets the same ``sys.argv`` its
script would (``<name>.py ARGS``): the same help, options, errors, exit codes and start-up
cache (``train.py --help`` answers from it).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from types import ModuleType

from mlcycle import __version__
from mlcycle.core.errors import fail
from mlcycle.core.extras import command_missing_extra

# name, module under mlcycle.commands, what it does (one line of ``mlcycle --help``)
COMMANDS = [
    ("train", "train", "train one run from its config (LightningCLI: --config, --print_config)"),
    ("evaluate", "evaluate", "score a run's checkpoint on its val or test split"),
    ("export", "export", "TorchScript, ONNX and INT8 ONNX from a run, verified against eager"),
    ("predict", "predict", "predict with an exported model: one JSON line per image (or CSV row)"),
    ("validate", "validate_data", "check every file or row of a config's data, write a report"),
    ("eda", "eda", "an HTML report and an executed notebook of a config's data"),
    ("materialize", "materialize_data", "copy a config's data into a new folder, with a manifest"),
    ("optimize", "optimize", "write a config's data into litdata's chunks (a folder or s3://)"),
    ("compare", "compare", "cross-validate many candidate models on the same folds, rank them"),
    ("learning-curve", "learning_curve", "would more data help? a candidate on 10-100% of train"),
    ("tune", "tune", "search hyperparameters with Optuna over train.py runs"),
    ("ensemble", "ensemble", "combine trained runs into one run directory"),
    ("serve", "serve", "serve an exported model over HTTP"),
    ("monitor", "monitor", "check served predictions for drift against the model's reference"),
    ("retrain", "retrain", "train a challenger, score it against the champion, promote"),
    ("report", "report", "write a self-contained HTML model card of a run"),
    ("label-issues", "label_issues", "rank likely label errors of a comparison or a run"),
    ("label-next", "label_next", "pick the unlabeled images or rows to label next"),
]
MODULES = {name: module for name, module, _ in COMMANDS}
# the module names (validate_data) and their dashed spelling (validate-data) work too
ALIASES = {
    alias: name
    for name, module, _ in COMMANDS
    for alias in (module, module.replace("_", "-"))
    if alias != name
}
COMPLETION_BASH = """\
# bash completion for mlcycle: eval "$(mlcycle completion bash)"
_mlcycle() {{
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "{words}" -- "${{COMP_WORDS[1]}}"))
    else
        COMPREPLY=($(compgen -f -- "${{COMP_WORDS[COMP_CWORD]}}"))
    fi
}}
complete -o filenames -F _mlcycle mlcycle
"""


def usage() -> str:
    """What ``mlcycle --help`` prints: one line per command."""
    width = max(len(name) for name in MODULES)
    lines = [
        "usage: mlcycle <command> [args]      (mlcycle <command> --help: its options)",
        "",
        "commands:",
        *(f"  {name:{width}}  {text}" for name, _, text in COMMANDS),
        "",
        "options:",
        "  -h, --help         this list",
        "  --version          mlcycle's version",
        "  completion bash    a bash completion script (commands and their options):",
        "                     mlcycle completion bash > ~/.local/share/bash-completion/completions/mlcycle",
        "",
        "scripts/<command>.py runs the same command (scripts/validate_data.py for validate,",
        "scripts/materialize_data.py for materialize).",
    ]
    return "\n".join(lines) + "\n"


def completion(args: list[str]) -> int:
    """``mlcycle completion bash``: a completion script for the command names and each command's
    options (shtab; the names alone without it)."""
    if args != ["bash"]:
        fail("mlcycle completion takes one shell: bash (see mlcycle --help)")
    from mlcycle.commands.parser import completion_script

    words = " ".join([*MODULES, "completion", "--help", "--version"])
    sys.stdout.write(completion_script("bash") or COMPLETION_BASH.format(words=words))
    return 0


def unknown(word: str) -> None:
    """One line naming the closest command; exit code 2."""
    close = difflib.get_close_matches(word, [*MODULES, *ALIASES], n=1)
    hint = f"; did you mean '{ALIASES.get(close[0], close[0])}'?" if close else ""
    fail(f"unknown command '{word}'{hint} (see mlcycle --help)")


def load(module: str) -> ModuleType:
    """``mlcycle.commands.<module>``; a missing extra it imports is one line naming the extra."""
    try:
        return importlib.import_module(f"mlcycle.commands.{module}")
    except ModuleNotFoundError as exc:
        missing = command_missing_extra(exc, f"mlcycle.commands.{module}")
        if missing is None:
            raise
        fail(str(missing))


def run(module: str, args: list[str]) -> int:
    """``mlcycle.commands.<module>.main`` with the ``sys.argv`` of ``scripts/<module>.py``; the
    exit code a command returns (predict), else 0."""
    saved = sys.argv
    sys.argv = [f"{module}.py", *args]
    try:
        result = load(module).main()
    finally:
        sys.argv = saved
    is_code = isinstance(result, int) and not isinstance(result, bool)
    return result if is_code else 0


def main(argv: list[str] | None = None) -> int:
    """``mlcycle COMMAND ARGS``; the command's exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    word, args = (argv[0], argv[1:]) if argv else ("--help", [])
    if word in ("-h", "--help", "help"):
        sys.stdout.write(usage())
        return 0
    if word == "--version":
        sys.stdout.write(f"mlcycle {__version__}\n")
        return 0
    if word == "completion":
        return completion(args)
    name = ALIASES.get(word, word)
    if name not in MODULES:
        unknown(word)
    return run(MODULES[name], args)

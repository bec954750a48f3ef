"""A mistyped option is answered before torch or Lightning is imported (seconds of imports):
the commands parse first and import their stages after; the other commands' keys that the
error may name come from the start-up cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The script as a user runs it; the last line names the heavy modules it imported.
PROBE = """import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    print("imported:", [m for m in ("torch", "lightning") if m in sys.modules])
"""
CASES = [  # script arguments, what the one error line says
    (["evaluate.py", "--bogus"], "unknown option '--bogus' (see mlcycle evaluate --help)"),
    (["export.py", "--bogus"], "unknown option '--bogus' (see mlcycle export --help)"),
    (["serve.py", "--bogus"], "unknown option '--bogus' (see mlcycle serve --help)"),
    (["monitor.py", "--bogus"], "unknown option '--bogus' (see mlcycle monitor --help)"),
    (["report.py", "--bogus"], "unknown option '--bogus' (see mlcycle report --help)"),
    (["ensemble.py", "--bogus"], "unknown option '--bogus' (see mlcycle ensemble --help)"),
    (["compare.py", "-x"], "unknown option '-x' (see mlcycle compare --help)"),
    (["learning_curve.py", "-x"], "unknown option '-x' (see mlcycle learning-curve --help)"),
    # a data tool's key: its parser imports Lightning, its keys come from the cache
    (["export.py", "--sample", "3"], "--sample is an option of mlcycle eda, not of mlcycle export"),
]


# In a process of its own, as the scripts run: the cache's stamp covers sys.path's installed
# distributions, and a test worker's sys.path may hold more (a plugin installed by a test).
WARM = """import json
from mlcycle.commands.parser import other_command
from mlcycle.training import cache
for command in ("evaluate", "export"):  # each skips its own keys
    assert other_command("unknown option '--bogus'", command) is None
print(json.dumps(sorted(cache.load()["command_keys"])))
"""


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache folder holding every command's keys, as the first such error writes them."""
    folder = tmp_path_factory.mktemp("command_keys")
    env = {**os.environ, "MLCYCLE_CACHE_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", WARM], cwd=ROOT, env=env, text=True, capture_output=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert {"eda", "evaluate", "export"} <= set(json.loads(done.stdout)), done.stdout
    return folder


def start(folder: Path, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "MLCYCLE_CACHE_DIR": str(folder)}
    argv = [sys.executable, "-c", PROBE, f"scripts/{args[0]}", *args[1:]]
    return subprocess.Popen(argv, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def run_all(folder: Path, cases: list[list[str]]) -> list[tuple[int, str, str]]:
    """Every case at once; one that imported Lightning runs again (a source file edited
    meanwhile by other work makes the cache stale, as it should; that run rebuilt it)."""
    procs = [start(folder, args) for args in cases]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for i, (_, out, _) in enumerate(results):
        if not out.endswith("imported: []\n"):
            proc = start(folder, cases[i])
            results[i] = (proc.wait(timeout=120), *proc.communicate())
    return results


def test_a_wrong_option_is_one_line_before_torch_or_lightning(warm_cache):
    results = run_all(warm_cache, [args for args, _ in CASES])
    for (args, line), (code, out, err) in zip(CASES, results, strict=True):
        assert (code, err, out) == (2, f"error: {line}\n", "imported: []\n"), args

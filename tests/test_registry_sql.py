"""The model registry on a database (retrain.py --registry URL), on SQLite and PostgreSQL: the
same record as the JSON file, two processes promoting at once lose nothing, one retrain.py at a
time, and a registry that is not there in one line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlcycle.core.errors import UserError
from mlcycle.retrain.registry import command_lock, describe, open_registry

ROOT = Path(__file__).resolve().parents[1]


def history(registry) -> None:
    """Three versions, two promotions, a keep, a rollback, an edited entry."""
    first = registry.add_version(Path("/runs/a"), decision="initial", reason="first")
    registry.promote(first["version"], "first")
    registry.save()
    second = registry.add_version(Path("/runs/b"), decision="promoted", metrics={"f1": 0.9})
    registry.promote(second["version"], "better")
    registry.save()
    third = registry.add_version(Path("/runs/c"), decision="kept", metrics={"f1": 0.5})
    registry.event("keep", version=third["version"], champion=2, reason="worse")
    registry.save()
    dropped, restored = registry.rollback("complaints")
    restored.update(onnx="/runs/a/export/model.onnx")
    registry.save()
    assert (dropped["version"], restored["version"]) == (2, 1)


def without_times(data: dict) -> dict:
    drop = ("time", "registered", "rolled_back")
    return {
        "champion": data["champion"],
        "lineage": data["lineage"],
        "versions": [{k: v for k, v in e.items() if k not in drop} for e in data["versions"]],
        "events": [{k: v for k, v in e.items() if k not in drop} for e in data["events"]],
        "rolled_back": [v["version"] for v in data["versions"] if "rolled_back" in v],
    }


def test_a_database_registry_keeps_what_the_json_file_keeps(registry_url, tmp_path):
    file = open_registry(tmp_path / "registry.json")
    history(file)
    database = open_registry(registry_url)
    history(database)
    again = open_registry(registry_url)  # as another process reads it
    expected = without_times(open_registry(tmp_path / "registry.json").data)
    assert without_times(database.data) == without_times(again.data) == expected
    assert again.champion["run"] == "/runs/a" and again.champion["onnx"].endswith("model.onnx")
    assert again.find_run(Path("/runs/c"))["decision"] == "kept"
    assert describe(again)[0].startswith("* v1")
    with pytest.raises(UserError, match="nothing to roll back to"):
        again.rollback("again")
    assert open_registry(registry_url).data["lineage"] == [1]  # the refused rollback wrote nothing


def test_the_pointer_sits_beside_a_sqlite_registry_or_where_told(tmp_path):
    registry = open_registry(f"sqlite:///{tmp_path / 'models' / 'registry.db'}")
    entry = registry.add_version(tmp_path / "run")
    registry.promote(entry["version"], "first")
    assert registry.write_pointer() == tmp_path / "models" / "champion"
    told = open_registry(f"sqlite:///{tmp_path / 'models' / 'registry.db'}", tmp_path / "ptr")
    assert told.write_pointer().read_text().strip() == str((tmp_path / "run").resolve())


PROMOTER = """
import sys
from pathlib import Path
from mlcycle.retrain.registry import open_registry

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
registry = open_registry(url)
sys.stdout.write("ready\\n"); sys.stdout.flush(); sys.stdin.readline()  # start together
for i in range(count):
    entry = registry.add_version(Path(f"/runs/{name}{i}"), decision="promoted")
    registry.promote(entry["version"], f"{name} {i}")
    registry.save()
"""


def test_two_processes_promoting_at_once_lose_no_entry(registry_url):
    count = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(PROMOTER), registry_url, name, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        for name in "ab"
    ]
    for proc in procs:
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    data = open_registry(registry_url).data
    runs = sorted(v["run"] for v in data["versions"])
    assert runs == sorted(f"/runs/{n}{i}" for n in "ab" for i in range(count))
    assert [v["version"] for v in data["versions"]] == list(range(1, 2 * count + 1))
    assert sorted(data["lineage"]) == list(range(1, 2 * count + 1))
    assert data["champion"] == data["lineage"][-1]
    promotions = [e for e in data["events"] if e["event"] == "promote"]
    assert [e["version"] for e in promotions] == data["lineage"]
    # each promotion names the champion it replaced: the lineage has no gap
    assert [e["previous"] for e in promotions] == [None, *data["lineage"][:-1]]


def test_one_retrain_at_a_time_holds_a_database_registry(registry_url):
    with command_lock(registry_url):
        with pytest.raises(UserError, match="another retrain.py is using registry"):
            with command_lock(registry_url):
                pass
    with command_lock(registry_url):  # released
        pass


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql+pymysql://u@127.0.0.1/x", "--registry 'mysql+pymysql://u@127.0.0.1/x'"),
        ("sqlite://", "give a file"),
        ("nodb://x", "--registry 'nodb://x'"),
    ],
)
def test_a_registry_url_it_cannot_use_is_one_line(url, message):
    with pytest.raises(UserError, match="--registry") as caught:
        open_registry(url)
    assert message in str(caught.value) and "\n" not in str(caught.value)

"""The serving install, ``pip install "mlcycle[serve]"``: a fresh venv without torch that
predicts, serves and monitors an exported model; and the extras table (core/extras.py) that
turns a missing package into one line naming the extra to add.

How the venv is filled without the network: pip installs ``mlcycle[serve]`` with its own
resolver from a wheelhouse and ``--no-index`` (``-c constraints.txt``, as Dockerfile.serve
does). The wheelhouse holds mlcycle's wheel, built from this checkout, and one wheel per
distribution in the closure of ``mlcycle[serve]``'s requirements, repacked from what this
test's venv has installed (the files its RECORD lists under site-packages, with a fresh RECORD).
So the wheels are the releases ``make install`` put here, and a requirement the serve extra
misses (or one it pulls in, like torch) shows up as a failed install, a failed ``pip check``
or a package found where it must not be. Console scripts are written by pip from each
wheel's entry points.
"""

from __future__ import annotations

import ast
import base64
import email
import functools
import hashlib
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import tomllib
from export_helpers import ROOT, exported_run
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from serve_helpers import Client, val_uploads

from mlcycle.core.extras import EXTRAS, extra_for, missing_extra

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# never in a serving install
TRAINING_SIDE = ("torch", "torchvision", "lightning", "albumentations", "sklearn", "pandas")
SKIPPED = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def closure(lines: list[str], extras: set[str]) -> dict[str, md.Distribution]:
    """The installed distributions that ``lines`` (Requires-Dist with ``extras`` chosen) need,
    by canonical name; mlcycle's own extras (``mlcycle[train]``) are followed in ``lines``."""
    extras = set(extras) | {""}
    own = [Requirement(line) for line in lines]
    for req in own:  # mlcycle[a] in an extra that is chosen adds a's requirements
        if req.name == "mlcycle" and (req.marker is None or _chosen(req, extras)):
            extras |= set(req.extras)
    todo = [(req, extras) for req in own if req.name != "mlcycle"]
    found: dict[str, md.Distribution] = {}
    chosen: dict[str, set[str]] = {}
    while todo:
        req, parent = todo.pop()
        if req.marker is not None and not _chosen(req, parent):
            continue
        key = canonicalize_name(req.name)
        wanted = set(req.extras) | {""}
        if key in chosen and wanted <= chosen[key]:
            continue
        chosen[key] = chosen.get(key, set()) | wanted
        found[key] = md.distribution(req.name)
        todo += [(Requirement(line), chosen[key]) for line in found[key].requires or []]
    return found


def _chosen(req: Requirement, extras: set[str]) -> bool:
    return any(req.marker.evaluate({"extra": extra}) for extra in extras)


def repack(dist: md.Distribution, folder: Path) -> Path:
    """The installed ``dist`` as a wheel in ``folder`` (stored, not compressed: it is unpacked
    at once)."""
    files = [f for f in dist.files or [] if f.parts[0] != ".." and "__pycache__" not in f.parts]
    info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    tags = [line.split(":", 1)[1].strip().split("-") for line in dist.read_text("WHEEL").splitlines()
            if line.startswith("Tag:")]  # fmt: skip
    tag = "-".join(".".join(dict.fromkeys(parts)) for parts in zip(*tags, strict=True))  # py2.py3
    name = re.sub(r"[-_.]+", "_", dist.metadata["Name"]).lower()
    wheel = folder / f"{name}-{dist.version}-{tag}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        for file in files:
            path = Path(dist.locate_file(file))
            if file.name in SKIPPED and file.parts[0] == info or not path.is_file():
                continue
            data = path.read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            zf.writestr(file.as_posix(), data)
            record.append(f"{file.as_posix()},sha256={digest.decode()},{len(data)}")
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return wheel


def offline_env() -> dict[str, str]:
    """pip without this machine's config (its index, find-links, constraints) or the network."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip(venv: Path, *args: str) -> subprocess.CompletedProcess:
    """This venv's pip acting on ``venv`` (``pip --python``), offline."""
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=offline_env(), check=False
    )


def build_mlcycle(folder: Path, wheels: Path) -> Path:
    """mlcycle's wheel from a copy of this checkout (the build leaves no files in the repo)."""
    source = folder / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))  # fmt: skip
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    command += ["--no-index", "-q", "-w", str(wheels), str(source)]
    subprocess.run(command, check=True, timeout=300, env=offline_env(), capture_output=True)
    return next(wheels.glob("mlcycle-*.whl"))


@pytest.fixture(scope="module")
def serve_venv(tmp_path_factory) -> Path:
    """A fresh venv holding ``mlcycle[serve]`` and nothing else, installed offline by pip."""
    base = tmp_path_factory.mktemp("serve_install")
    wheels = base / "wheels"
    wheels.mkdir()
    wheel = build_mlcycle(base, wheels)
    with zipfile.ZipFile(wheel) as zf:
        meta = email.message_from_bytes(zf.read(next(n for n in zf.namelist() if n.endswith("dist-info/METADATA"))))  # fmt: skip
    for dist in closure(meta.get_all("Requires-Dist") or [], {"serve"}).values():
        repack(dist, wheels)
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    done = pip(venv, "install", "--no-index", "--find-links", str(wheels), "--no-compile",
               "-c", str(ROOT / "constraints.txt"), "mlcycle[serve]")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return venv


def in_venv(venv: Path, *args: str, cwd: Path = ROOT, timeout: float = 120):
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=offline_env(),
        check=False,
    )


@pytest.mark.slow
def test_serve_install_is_complete_and_has_no_training_side(serve_venv):
    found = in_venv(serve_venv, "python", "-c", f"""
import importlib.util, json
print(json.dumps({{n: importlib.util.find_spec(n) is not None for n in {TRAINING_SIDE!r}}}))
""")  # fmt: skip
    assert json.loads(found.stdout) == dict.fromkeys(TRAINING_SIDE, False), found.stderr
    check = pip(serve_venv, "check")
    assert check.returncode == 0 and "No broken requirements" in check.stdout, check.stdout
    helps = in_venv(serve_venv, "mlcycle", "--help")
    assert helps.returncode == 0 and "serve" in helps.stdout, helps.stderr


@pytest.mark.slow
def test_missing_extra_is_one_line(serve_venv):
    done = in_venv(serve_venv, "mlcycle", "train", "--config", "configs/quickstart.yaml")
    assert done.returncode == 2
    assert done.stderr == (
        "error: mlcycle train needs the 'train' extra (torch is not installed): "
        "pip install 'mlcycle[train]'\n"
    )
    tune = ("--config", "configs/tune/digits.yaml")
    for command, *args in [("evaluate", "--run", "x"), ("export", "--run", "x"), ("tune", *tune)]:
        done = in_venv(serve_venv, "mlcycle", command, *args)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"error: mlcycle {command} needs the '"), done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    api = (
        "import mlcycle\n"
        "try:\n    mlcycle.train('configs/quickstart.yaml')\n"
        "except mlcycle.MissingExtra as error:\n    print(error.extra, isinstance(error, mlcycle.UserError), error)\n"
    )
    done = in_venv(serve_venv, "python", "-c", api)
    assert done.stdout == (
        "train True mlcycle.train needs the 'train' extra (torch is not installed): "
        "pip install 'mlcycle[train]'\n"
    ), done.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return exported_run(tmp_path_factory)[0]


@pytest.mark.slow
def test_predict_and_load_without_torch(serve_venv, exported, tmp_path):
    image = sorted((exported.parent / "images" / "red").glob("*.png"))[0]
    model = exported / "export" / "model.onnx"
    done = in_venv(serve_venv, "mlcycle", "predict", str(model), str(image))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout.splitlines()[0])
    assert printed["class"] in ("red", "green", "blue") and len(printed["top_k"]) == 3
    loaded = in_venv(serve_venv, "python", "-c", f"""
import json, sys, mlcycle
answer = mlcycle.load({str(exported / "export")!r}).predict({str(image)!r})
print(json.dumps([answer[0]["class"], sorted(m for m in ("torch", "lightning") if m in sys.modules)]))
""")  # fmt: skip
    assert json.loads(loaded.stdout) == [printed["class"], []], loaded.stderr


def serve(venv: Path, model: Path, store: Path) -> tuple[subprocess.Popen, int]:
    """``mlcycle serve`` from ``venv`` on a free loopback port, once it says where."""
    args = ["serve", "--model", str(model), "--port", "0", "--store-dir", str(store)]
    proc = subprocess.Popen(
        [str(venv / "bin" / "mlcycle"), *args],
        stderr=subprocess.PIPE,
        text=True,
        env=offline_env(),
        cwd=store.parent,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))
        assert line or proc.poll() is None, f"serve exited: {proc.returncode}"
    raise AssertionError("serve did not say where it listens")


@pytest.mark.slow
def test_serve_and_monitor_without_torch(serve_venv, exported, tmp_path):
    model = exported / "export" / "model.onnx"
    proc, port = serve(serve_venv, model, tmp_path / "serving")
    try:
        client = Client(port)
        assert client.get("/health").status == 200
        answer = client.predict_files(val_uploads(exported, 4))
        assert answer.status == 200, answer.body
        assert [r["class"] in ("red", "green", "blue") for r in answer.json()["results"]] == [
            True
        ] * 4
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    store = tmp_path / "serving" / "predictions.db"
    out = tmp_path / "monitor"
    done = in_venv(serve_venv, "mlcycle", "monitor", "--db", f"sqlite:///{store}",
                   "--model", str(model), "--model-version", "all", "--out", str(out))  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # 1: a window crossed a threshold
    assert sorted(p.suffix for p in out.iterdir()) == [".html", ".json"], done.stdout


def third_party_imports() -> set[str]:
    """The top-level modules src/mlcycle imports that are neither stdlib nor mlcycle."""
    names = set()
    for path in (ROOT / "src" / "mlcycle").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"mlcycle", "__future__"}


@functools.cache
def installed_modules() -> dict[str, set[str]]:
    """Each installed distribution (canonical name): the top-level modules it provides (one
    scan of every distribution's files, seconds with the full install)."""
    found: dict[str, set[str]] = {}
    for module, dists in md.packages_distributions().items():
        for dist in dists:
            found.setdefault(canonicalize_name(dist), set()).add(module)
    return found


def import_names(dist_name: str) -> set[str]:
    """The top-level modules the installed distribution ``dist_name`` provides."""
    return installed_modules().get(canonicalize_name(dist_name), set())


def test_every_import_is_in_the_base_or_an_extra():
    base = {n for d in closure(PYPROJECT["dependencies"], set()) for n in import_names(d)}
    unknown = third_party_imports() - base - set(EXTRAS)
    assert not unknown, f"add these to core/extras.py EXTRAS (and their extra): {unknown}"


def test_extras_table_follows_pyproject():
    for extra, lines in PYPROJECT["optional-dependencies"].items():
        if extra in ("dev", "all"):
            continue
        for req in map(Requirement, lines):
            if req.name == "mlcycle":
                continue
            provided = import_names(req.name) & set(EXTRAS)
            assert provided, f"{req.name} ({extra}) has no import in core/extras.py EXTRAS"
            assert all(extra in EXTRAS[m] for m in provided), (req.name, extra, provided)


def test_missing_extra_names_the_commands_extra():
    assert extra_for("scipy", "monitor") == "serve"
    assert extra_for("scipy", "train") == "train"
    assert extra_for("pyarrow", "train") == "tables"
    assert extra_for("requests") is None
    error = missing_extra(ModuleNotFoundError("No module named 'torch'", name="torch"), "x")
    assert str(error) == "x needs the 'train' extra (torch is not installed): pip install 'mlcycle[train]'"  # fmt: skip
    assert (error.extra, error.module, error.exit_code) == ("train", "torch", 2)
    broken = ModuleNotFoundError("No module named 'torch._C'", name="torch._C")
    assert missing_extra(broken, "x") is None
    assert missing_extra(ValueError("torch"), "x") is None

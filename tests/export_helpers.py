"""A tiny trained and exported run shared by test_export.py and test_predict.py, and the
standalone predictor run as on a device (the edge package copied alone)."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PREDICT = ROOT / "scripts" / "predict.py"
EDGE = ROOT / "src" / "mlcycle" / "edge"
# runs ``python -m edge`` under BLOCKER (which runs a script file)
LAUNCHER = 'import runpy\nrunpy.run_module("edge", run_name="__main__", alter_sys=True)\n'
COLORS = {"red": (200, 40, 40), "green": (40, 190, 60), "blue": (50, 60, 210)}

# Runs a script with some packages made unimportable (a meta path finder that refuses them and
# their submodules: "torch", or "mlcycle.commands"), then fails if any was imported anyway.
BLOCKER = """
import runpy, sys
blocked = set(sys.argv[1].split(","))
def refused(name):
    return any(name == b or name.startswith(b + ".") for b in blocked)
class Block:
    def find_spec(self, name, path=None, target=None):
        if refused(name):
            raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
sys.meta_path.insert(0, Block())
script, sys.argv = sys.argv[2], sys.argv[2:]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    leaked = sorted(m for m in sys.modules if refused(m))
    if leaked:
        sys.stderr.write(f"LEAKED {leaked}\\n")
        sys.exit(99)
"""
NOT_FOR_ONNX = (
    "mlcycle",
    "lightning",
    "pytorch_lightning",
    "albumentations",
    "cv2",
    "torch",
    "torchvision",
    "torchmetrics",
)


def write_images(root: Path, per_class: int = 12) -> Path:
    """Colour-coded classes with noise and a random bar; 20x20 so resizing to 16 is exercised."""
    rng = np.random.default_rng(7)
    for name, color in COLORS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.normal(color, 25, (20, 20, 3))
            r, c = rng.integers(0, 14, 2)
            img[r : r + 6, c : c + 2] = 255
            img = np.clip(img, 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{name}_{i:02d}.png")
    return root


def train_run(base: Path, per_class: int = 12, *extra: str) -> Path:
    """A small colour-coded run in ``base/run``; ``extra`` train.py arguments override."""
    from mlcycle.commands.train import main

    data = write_images(base / "images", per_class)
    args = [
        "--data.source=folder",
        f"--data.root={data}",
        "--data.image_size=16",
        "--data.val_fraction=0.25",
        "--data.test_fraction=0",
        "--data.batch_size=8",
        "--data.num_workers=0",
        "--model.arch=small_cnn",
        "--model.lr=0.005",
        "--trainer.max_epochs=3",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--run_dir={base / 'run'}",
        *extra,
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        return Path(main(args))


def export_run(run: Path, *extra: str) -> tuple[dict, str]:
    """``export.py --run RUN ...`` in-process; returns its result and what it printed."""
    from mlcycle.commands.export import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = main(["--run", str(run), *extra])
    return result, out.getvalue()


_CACHE: dict[str, tuple[Path, dict, str]] = {}


def exported_run(tmp_path_factory) -> tuple[Path, dict, str]:
    """One run trained and exported to all formats with INT8, once per test session."""
    if "run" not in _CACHE:
        run = train_run(tmp_path_factory.mktemp("export_run"))
        result, printed = export_run(run, "--quantize", "int8", "--calibration-images", "24")
        _CACHE["run"] = (run, result, printed)
    return _CACHE["run"]


def run_blocked(blocked: tuple[str, ...], script: Path, *args: str) -> subprocess.CompletedProcess:
    """``python script args`` in a fresh process where ``blocked`` packages cannot be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def device_folder(folder: Path) -> Path:
    """``folder`` holding only a copy of the edge package (and a launcher), as a device would."""
    shutil.copytree(EDGE, folder / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "launch.py").write_text(LAUNCHER)
    return folder


def on_device(device: Path, blocked: tuple[str, ...], *args: str) -> subprocess.CompletedProcess:
    """``python -m edge args`` in ``device`` (:func:`device_folder`), where ``blocked`` cannot be
    imported (the blocker exits 99 when one was imported anyway)."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(blocked), str(device / "launch.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=device,
    )

"""examples/plugin installed by pip into a folder of its own, which the scripts' subprocesses
find on ``PYTHONPATH``; the shared virtual environment is left as it was, so no other test sees
the plugin. Shared by the plugin tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
CONFIG = PLUGIN / "multilabel.yaml"
# Label sets of the generated images; each label is a pattern drawn into the image.
COMBINATIONS = ("h", "v", "blob", "h|v", "blob|h")


def install_plugin(work: Path) -> Path:
    """The plugin installed by pip into ``work/site`` (built from a copy of its source, so no
    build files land in the repository); the ``plugin_path`` fixture of conftest.py calls it
    once a session."""
    source = shutil.copytree(PLUGIN, work / "source")
    target = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--target", str(target), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return target


def script(plugin_path: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    paths = [str(plugin_path), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def draw(labels: set[str], size: int, seed: int) -> np.ndarray:
    """Horizontal stripes (``h``), vertical stripes (``v``) and a disk (``blob``), with noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    image = rng.normal(30, 15, (size, size))
    if "h" in labels:
        image += 110 * ((yy // 2) % 2)
    if "v" in labels:
        image += 110 * ((xx // 2) % 2)
    if "blob" in labels:
        cy, cx = rng.integers(size // 3, 2 * size // 3, size=2)
        image += 160 * (((yy - cy) ** 2 + (xx - cx) ** 2) < (size / 4) ** 2)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_manifest(root: Path, per_combination: int = 20, size: int = 16) -> Path:
    """``root/labels.jsonl`` over ``root/img/*.png``, plus three rows the source must skip."""
    (root / "img").mkdir(parents=True)
    lines = []
    for c, combination in enumerate(COMBINATIONS):
        labels = combination.split("|")
        for i in range(per_combination):
            name = f"img/{c}_{i:02d}.png"
            Image.fromarray(draw(set(labels), size, c * 100 + i)).save(root / name)
            label = labels if len(labels) > 1 else labels[0]  # a list, or a plain string
            lines.append(json.dumps({"path": name, "label": label, "source": "generated"}))
    lines.insert(3, json.dumps({"path": "../outside.png", "label": "h"}))  # line 4
    lines.insert(5, "{not json")  # line 6
    lines.insert(7, json.dumps({"path": "img/0_00.png", "label": []}))  # line 8
    (root / "labels.jsonl").write_text("\n".join(lines) + "\n")
    return root / "labels.jsonl"


def train_plugin(
    plugin_path: Path, manifest: Path, run: Path, *extra: str
) -> subprocess.CompletedProcess:
    """train.py on the plugin's multi-label config, small and on the CPU; ``extra`` overrides."""
    return script(
        plugin_path,
        "scripts/train.py",
        "--config",
        str(CONFIG),
        f"--data.manifest={manifest}",
        f"--run_dir={run}",
        "--data.image_size=16",
        "--data.batch_size=16",
        "--data.val_fraction=0.25",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
        *extra,
    )

"""The standalone predictor as a device runs it: ``src/mlcycle/edge`` copied alone into a
folder and run as ``python -m edge``, where the blocked packages cannot be imported
(export_helpers.BLOCKER, which exits 99 when one was imported anyway)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from export_helpers import BLOCKER, ROOT

EDGE = ROOT / "src" / "mlcycle" / "edge"
# BLOCKER runs a script file; this one runs the package as ``python -m edge`` would
LAUNCHER = 'import runpy\nrunpy.run_module("edge", run_name="__main__", alter_sys=True)\n'


def on_device(
    blocked: tuple[str, ...], *args: str, timeout: int = 120
) -> subprocess.CompletedProcess:
    """``python -m edge args`` in a folder that holds only a copy of the edge package."""
    with tempfile.TemporaryDirectory() as tmp:
        device = Path(tmp)
        shutil.copytree(EDGE, device / "edge", ignore=shutil.ignore_patterns("__pycache__"))
        (device / "launch.py").write_text(LAUNCHER)
        return subprocess.run(
            [sys.executable, "-c", BLOCKER, ",".join(blocked), str(device / "launch.py"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=device,
        )

"""The registry's champion: the first one registered from ``--champion``, and the rollback to
the previous one. Either way the champion is exported (ONNX, verified) before the pointer the
server watches names it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.retrain.compete import fingerprint
from mlcycle.retrain.deploy import ensure_exported
from mlcycle.retrain.registry import Registry
from mlcycle.run import tracking
from mlcycle.run.loader import Run, sha256


def champion_of(registry: Registry, given: str | None) -> tuple[dict[str, Any], Run]:
    """The registry's champion; an empty registry registers ``--champion`` as version 1."""
    current = registry.champion
    if current is not None:
        if given and str(Path(given).resolve()) != current["run"]:
            raise UserError(
                f"--champion '{given}' is not the champion of registry '{registry.path}' "
                f"(v{current['version']}, {current['run']}); leave --champion out, or --rollback"
            )
        return current, Run(current["run"])
    if not given:
        raise UserError(
            f"registry '{registry.path}' has no champion yet; pass --champion RUN (the model in "
            "production) to register it as the first version"
        )
    run = Run(given)
    try:
        exported = ensure_exported(run)
    except UserError as exc:
        raise UserError(
            f"cannot register '{given}' as the champion: export.py: {exc}; if it is the model in "
            f"production, export it yourself (python scripts/export.py --run {given} --force) "
            "and run again"
        ) from exc
    entry = registry.add_version(
        run.path,
        data_fingerprint=fingerprint(run),
        checkpoint_sha256=sha256(run.checkpoint("best")),
        decision="initial",
        reason="first version, registered as champion",
        **exported,
    )
    registry.promote(entry["version"], entry["reason"])
    registry.save()
    pointer = registry.write_pointer()
    print(
        f"registered {run.path} as v{entry['version']}, the champion; {pointer} -> {entry['run']}"
    )
    tracking.mark(run.path, "champion")
    return entry, run


def rollback(registry: Registry, reason: str) -> dict[str, Any]:
    """Restore the previous champion (exported again when its files are gone)."""
    dropped, restored = registry.rollback(reason)
    restored.update(ensure_exported(Run(restored["run"])))  # the server needs its ONNX file
    registry.save()
    pointer = registry.write_pointer()
    print(
        f"rolled back: v{restored['version']} ({restored['run']}) is the champion again; "
        f"v{dropped['version']} ({dropped['run']}) retired; {pointer} -> {restored['run']}"
    )
    tracking.mark(Path(restored["run"]), "champion")
    return restored

"""The quality part of classification data (a label per image): every file the source lists,
quarantined ones included, scanned; the label checks (conflicts, small classes, imbalance); the
extra columns of a manifest or query analysed by ``eda.py``; and ``materialize_data.py``.

Registered as the kind ``classification`` (``mlcycle.data_quality`` entry point)."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.data.skipped import check_strict
from mlcycle.data.sources import Found, load_samples
from mlcycle.quality.eda.analysis import pick
from mlcycle.quality.findings import Item, Thresholds, check_all
from mlcycle.quality.image_quality import ImageQuality
from mlcycle.quality.scan import scan
from mlcycle.quality.splits import assign_splits
from mlcycle.quality.validate import check_out_folder


def all_samples(dm: Any) -> Found:
    """Every sample of a classification source, including files a quarantine list leaves out;
    manifest rows the source skipped are counted on stderr."""
    hp = dm.hparams
    options = dict(hp.source_options or {})
    options.update(root=hp.root, manifest=hp.manifest, path_column=hp.path_column)
    options.update(label_column=hp.label_column, url=hp.url, query=hp.query, layout=hp.layout)
    found = load_samples(hp.source, **options)
    where = hp.manifest or hp.root or hp.url or hp.source
    check_strict(found.skipped, hp.strict, where)
    if found.skipped:
        path, reason = found.skipped[0]
        print(
            f"warning: skipped {len(found.skipped)} row(s) of '{where}'; the first: '{path}': {reason}",
            file=sys.stderr,
        )
    if not found.samples:
        raise UserError(f"no images found in '{where}'; check the data section of the config")
    return found


def _sha256(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest() if data else None


class LabelQuality(ImageQuality):
    """Images with one label each (``ImageClassificationData`` and its subclasses)."""

    task = "classification"
    labels_per_file = True

    def scan(self, dm: Any, t: Thresholds, out: Path, workers: int | None) -> dict[str, Any]:
        found = all_samples(dm)
        samples = found.samples
        check_out_folder(out, [s.path for s in samples])
        start = time.perf_counter()
        facts = scan([s.path for s in samples], workers=workers)
        seconds = time.perf_counter() - start
        splits = assign_splits(dm, found, [f.sha256 if f.decoded else None for f in facts])
        items = [
            Item(str(s.path), s.label, split, f)
            for s, split, f in zip(samples, splits, facts, strict=True)
        ]
        counts = Counter(it.label for it in items if it.facts.decoded)
        return {
            "task": self.task,
            "items": items,
            "seconds": seconds,
            "class_counts": dict(sorted(counts.items())),
            "class_count_unit": self.unit,
            "findings": check_all(items, t),
        }

    def read(
        self, dm: Any, wanted: set[str], sample: int | None, seed: int, workers: int | None
    ) -> dict[str, Any]:
        """Every file's bytes hashed (not decoded) to learn its split, as training does; the
        files of the ``wanted`` splits decoded."""
        found = all_samples(dm)
        samples = found.samples
        with ThreadPoolExecutor(max_workers=workers or min(8, os.cpu_count() or 1)) as pool:
            hashes = list(pool.map(_sha256, [s.path for s in samples]))
        splits = assign_splits(dm, found, hashes)
        all_counts: dict[str, dict[str, int]] = {}
        for s, split in zip(samples, splits, strict=True):
            counts = all_counts.setdefault(split or "unreadable", {})
            counts[s.label] = counts.get(s.label, 0) + 1
        chosen = [i for i, split in enumerate(splits) if split in wanted]
        picked = pick(chosen, [s.label for s in samples], sample, seed)
        facts = scan([samples[i].path for i in picked], detail=True, workers=workers, desc="reading")  # fmt: skip
        items, not_decoded, metas = [], [], []
        for i, f in zip(picked, facts, strict=True):
            if f.decoded:
                items.append(Item(str(samples[i].path), samples[i].label, splits[i], f))
                metas.append(samples[i].meta)
            else:
                not_decoded.append((str(samples[i].path), f.problem or "unreadable"))
        types = Counter(samples[i].path.suffix.lower() or "(none)" for i in chosen)
        return {
            "all_counts": {k: dict(sorted(v.items())) for k, v in sorted(all_counts.items())},
            "file_types": dict(types.most_common()),
            "items": items,
            "not_decoded": not_decoded,
            "skipped_test": sum(1 for s in splits if s == "test") if "test" not in wanted else 0,
            "sampled_out": len(chosen) - len(picked),
            "metas": metas,
            "task": self.task,
            "count_unit": self.eda_unit,
        }

    def materialize(self, dm: Any, out: Path, strip_exif: bool) -> dict[str, Any]:
        from mlcycle.quality.materialize import materialize

        return materialize(dm, out, strip_exif)


QUALITY = LabelQuality()

"""The quality part shared by the image kinds: every image gets the same file checks
(:mod:`mlcycle.quality.findings`), and a kind adds the checks of its labels or annotations by
filling in :meth:`ImageQuality.scan` (``validate_data.py``) and :meth:`ImageQuality.read`
(``eda.py``): :mod:`mlcycle.images.quality.labels` for labels per file, :mod:`mlcycle.quality.annotated`
for masks and boxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlcycle.quality.findings import Thresholds
from mlcycle.quality.kinds import DataQuality
from mlcycle.quality.validate import summary, validate_data


class ImageQuality(DataQuality):
    """Images with labels or annotations; a subclass reads them."""

    unit = "images"  # what the class counts of validate_data.py count
    eda_unit = "files"  # what the class counts of eda.py count
    labels_per_file = False  # one label per image: the same image under two labels is a finding

    def scan(self, dm: Any, t: Thresholds, out: Path, workers: int | None) -> dict[str, Any]:
        """Every file scanned and checked: the fields ``task``, ``items``, ``seconds``,
        ``class_counts``, ``class_count_unit``, ``findings`` (and ``annotations`` with ``rows``,
        one per image, for ``annotations.csv``) of ``data_report.json``."""
        raise NotImplementedError

    def read(
        self, dm: Any, wanted: set[str], sample: int | None, seed: int, workers: int | None
    ) -> dict[str, Any]:
        """The fields of :class:`~mlcycle.quality.eda.analysis.EDA` for the ``wanted`` splits
        (at most ``sample`` images), and ``metas``: the extra columns of each analysed image."""
        raise NotImplementedError

    def validate(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> dict:
        thresholds = Thresholds(
            min_size=args.min_size,
            near_distance=args.near_distance,
            near_correlation=args.near_correlation,
            min_per_class=args.min_per_class,
            max_imbalance=args.max_imbalance,
            outlier_z=args.outlier_z,
        )
        out = Path(args.out)
        report = validate_data(
            dm, configs, overrides, thresholds, out, args.quarantine_outliers, args.workers, self
        )
        print(summary(report, out))
        return report

    def explore(self, args: Any, dm: Any, configs: list[str], overrides: list[str]) -> Path:
        from mlcycle.quality.eda.report import write_eda  # matplotlib: only when drawing

        return write_eda(args, dm, configs, overrides, self)

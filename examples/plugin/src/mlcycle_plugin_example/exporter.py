"""Exporting a multi-label run: the graph ends in the sigmoid, so it returns probabilities.

An exporter is a ``TaskExport`` subclass registered under the task's name (the task class's
name without ``Task``, lower case: ``MultiLabelTask`` -> ``multilabel``). ``export.py`` traces
``module(task)``, writes TorchScript and ONNX, calls ``verify`` to compare each artifact with
the eager module on the validation images, and writes ``output(...)`` into ``model.json``. Its
``kind`` names one of mlcycle's output forms, ``labels`` (the labels at or above ``threshold``):
predict.py and the server answer it, the prediction store keeps it and the monitor compares it,
with no code of the plugin's beyond this description.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningModule
from torch import nn
from torchmetrics.functional.classification import multilabel_exact_match, multilabel_f1_score

from mlcycle.export.exporters import TaskExport, Verification, register_export
from mlcycle.export.onnx_export import INPUT_NAME, OnnxIO
from mlcycle.export.verify import check, drop_phrase, failed_checks, load_runner, render
from mlcycle_plugin_example.task import multi_hot_table, split_labels

OUTPUT = "probabilities"


def _scores(probs: np.ndarray, target: torch.Tensor, threshold: float) -> dict[str, float]:
    p, n = torch.from_numpy(probs), target.shape[1]
    return {
        "macro_f1": float(multilabel_f1_score(p, target, n, threshold, average="macro")),
        "exact_match": float(multilabel_exact_match(p, target, n, threshold)),
    }


@register_export("multilabel")
class MultiLabelExport(TaskExport):
    io = OnnxIO(outputs=(OUTPUT,), dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT: {0: "batch"}})
    headline = "val/f1"

    def module(self, task: LightningModule) -> nn.Module:
        self.threshold = float(task.hparams.threshold)
        return nn.Sequential(task.model, nn.Sigmoid())

    def verify(self, job: Verification) -> dict[str, Any]:
        """Probabilities of each artifact against eager's: FP32 within ``--max-logit-diff`` and
        the same labels above the threshold everywhere; INT8 within ``--max-f1-drop``."""
        args, names = job.args, [str(c) for c in job.data_info["class_names"]]
        table = multi_hot_table(names, split_labels(names)).long()
        threshold = getattr(self, "threshold", 0.5)
        runners = {a.name: load_runner(a) for a in job.artifacts}
        outputs: dict[str, list[np.ndarray]] = {name: [] for name in ["eager", *runners]}
        targets = []
        for x, y in self.batches(job.dataset, args.batch_size):
            with torch.no_grad():
                outputs["eager"].append(job.module.eval()(x).float().numpy())
            batch = np.ascontiguousarray(x.numpy(), dtype=np.float32)
            for name, run in runners.items():
                outputs[name].append(np.asarray(run(batch), dtype=np.float32))
            targets.append(table[y])
        target = torch.cat(targets)
        probs = {name: np.concatenate(parts) for name, parts in outputs.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # labels absent from val
            eager = _scores(probs["eager"], target, threshold)
            rows = []
            for artifact in job.artifacts:
                out = probs[artifact.name]
                same = ((out >= threshold) == (probs["eager"] >= threshold)).all(axis=1)
                row = {
                    **artifact.row(len(target)),
                    "max_abs_prob_diff": float(np.abs(out - probs["eager"]).max()),
                    "labels_agree": int(same.sum()),
                    **_scores(out, target, threshold),
                }
                row["macro_f1_change"] = row["macro_f1"] - eager["macro_f1"]
                if artifact.precision == "fp32":
                    row["checks"] = [
                        check("max_abs_prob_diff", row["max_abs_prob_diff"], args.max_logit_diff),
                        check("label_mismatches", len(target) - row["labels_agree"], 0),
                    ]
                else:
                    row["checks"] = [
                        check("macro_f1_drop", -row["macro_f1_change"], args.max_f1_drop)
                    ]
                row["passed"] = all(c["passed"] for c in row["checks"])
                rows.append(row)
        return {
            "split": "val",
            "images": len(target),
            "threshold": threshold,
            "eager": eager,
            "artifacts": rows,
            "passed": all(r["passed"] for r in rows),
        }

    def table(self, report: dict[str, Any], checkpoint: str) -> str:
        eager, n = report["eager"], str(report["images"])
        lines = [(f"eager ({checkpoint})", n, "-", "-", f"{eager['macro_f1']:.4f}", "reference")]
        for row in report["artifacts"]:
            lines.append(
                (
                    row["file"],
                    n,
                    f"{row['max_abs_prob_diff']:.2e}",
                    f"{row['labels_agree']}/{row['images']}",
                    f"{row['macro_f1']:.4f}",
                    "pass" if row["passed"] else "FAIL",
                )
            )
        head = ("artifact", "images", "max|dprob|", "labels agree", "macro F1", "check")
        return render(head, lines)

    def failures(self, report: dict[str, Any]) -> list[str]:
        def phrase(row: dict[str, Any], c: dict[str, Any]) -> str:
            if c["name"] == "max_abs_prob_diff":
                return (
                    f"{row['file']}: max |probability diff| {c['value']:.3g} exceeds {c['limit']:g}"
                )
            if c["name"] == "label_mismatches":
                return f"{row['file']}: labels differ from eager on {c['value']} of {row['images']} images"
            return drop_phrase(row, c, "val macro F1")

        return failed_checks(report, phrase)

    def output(self, data_info: dict[str, Any], module: nn.Module) -> dict[str, Any]:
        labels = split_labels([str(c) for c in data_info["class_names"]])
        return {
            "name": OUTPUT,
            "kind": "labels",  # mlcycle's output form: the labels at or above the threshold
            "shape": ["batch", len(labels)],
            "labels": labels,
            "threshold": getattr(self, "threshold", 0.5),
            "sigmoid_applied": True,
            "meaning": "independent probability of each label, in labels order; a label is "
            "present when its probability is at least threshold",
        }

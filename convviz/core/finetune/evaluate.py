"""Accuracy, per-class accuracy, confusion matrix and the misclassified images."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Misclassified:
    path: str
    true: str
    predicted: str
    prob: float  # probability of the predicted class


@dataclass
class Evaluation:
    accuracy: float
    loss: float
    per_class_accuracy: dict[str, float]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    misclassified: list[Misclassified] = field(default_factory=list)
    count: int = 0


def evaluate_logits(logits: torch.Tensor, targets: torch.Tensor, labels: list[str], paths: list[str] | None = None) -> Evaluation:
    """Scores of ``logits`` (N, K) against ``targets`` (N,); ``paths`` name the misclassified images."""
    logits, targets = logits.detach().float().cpu(), targets.detach().long().cpu()
    k = len(labels)
    if len(targets) == 0:
        return Evaluation(0.0, 0.0, {c: 0.0 for c in labels}, [[0] * k for _ in range(k)], [], 0)
    probs = logits.softmax(1)
    pred = probs.argmax(1)
    confusion = torch.bincount(targets * k + pred, minlength=k * k).view(k, k)
    per_class = {c: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else 0.0) for i, c in enumerate(labels)}
    wrong = (pred != targets).nonzero().flatten().tolist()
    mis = [Misclassified(paths[i] if paths else str(i), labels[int(targets[i])], labels[int(pred[i])], float(probs[i, pred[i]]))
           for i in wrong]
    mis.sort(key=lambda m: -m.prob)
    return Evaluation(float((pred == targets).float().mean()), float(F.cross_entropy(logits, targets)), per_class,
                      confusion.tolist(), mis, len(targets))

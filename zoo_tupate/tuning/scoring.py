"""The loss a run trains on and the validation metrics it is judged by (accuracy/F1; Pearson/Spearman)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from zoo_tupate.tuning.encoding import Encoded, collate


def loss_fn(logits: torch.Tensor, labels: torch.Tensor, problem: str) -> torch.Tensor:
    """Cross-entropy for classification, MSE for regression (one output)."""
    logits = logits.float()
    if problem == "regression":
        return F.mse_loss(logits.squeeze(-1), labels)
    return F.cross_entropy(logits, labels)


def _rank(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_vals = values[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and sorted_vals[j + 1] == sorted_vals[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def compute_metrics(predictions: np.ndarray, labels: np.ndarray, problem: str) -> dict[str, float]:
    """Classification: accuracy (and F1 of class 1 when binary). Regression: Pearson, Spearman, their mean."""
    if problem == "regression":
        pearson = _pearson(predictions, labels)
        spearman = _pearson(_rank(predictions), _rank(labels))
        return {"pearson": pearson, "spearman": spearman, "pearson_spearman": (pearson + spearman) / 2}
    pred = predictions.argmax(-1)
    metrics = {"accuracy": float((pred == labels).mean())}
    if predictions.shape[-1] == 2:
        tp = float(((pred == 1) & (labels == 1)).sum())
        fp = float(((pred == 1) & (labels == 0)).sum())
        fn = float(((pred == 0) & (labels == 1)).sum())
        metrics["f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return metrics


def primary_metric(problem: str) -> str:
    """The validation metric that picks the best epoch."""
    return "pearson_spearman" if problem == "regression" else "accuracy"


@torch.no_grad()
def evaluate(model: torch.nn.Module, encoded: Encoded, problem: str, device: torch.device, batch_size: int,
             pad_id: int, autocast: Any) -> dict[str, float]:
    """Validation loss and metrics."""
    model.eval()
    outputs, losses = [], []
    for start in range(0, len(encoded), batch_size):
        index = list(range(start, min(start + batch_size, len(encoded))))
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        labels = encoded.labels[index].to(device)
        with autocast():
            logits = model(**batch).logits
        losses.append(float(loss_fn(logits, labels, problem)) * len(index))
        outputs.append(logits.float().cpu())
    predictions = torch.cat(outputs).numpy()
    if problem == "regression":
        predictions = predictions.squeeze(-1)
    metrics = compute_metrics(predictions, encoded.labels.numpy(), problem)
    metrics["loss"] = sum(losses) / len(encoded)
    return metrics

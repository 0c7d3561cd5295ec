"""Fine-tuning loops of the transfer run: the whole model (``full``) or a LoRA adapter (``adapter``).

``full`` (Vu et al. 2020): fine-tune every weight on the source; for the target, keep the encoder and put a
new, freshly initialised head on it. ``adapter``: train a LoRA adapter on the source and continue that
adapter on the target (new head). AdamW, linear decay after 10% warm-up, gradients clipped at 1.0.
Batches are drawn from length buckets (shuffled) so padding costs little. Training runs in float32 on
``Recipe.device`` (CPU, or a CUDA GPU); the loss is checked once per epoch so a GPU never waits on the host.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from zoo_tupate.tuning.data import TaskData
from zoo_tupate.tuning.encoding import Encoded, collate
from zoo_tupate.tuning.scoring import compute_metrics, loss_fn, primary_metric

PROTOCOLS: tuple[str, ...] = ("full", "adapter")
_HEAD_NAMES = {"classifier", "pre_classifier"}


@dataclass
class Recipe:
    """Training settings shared by the source and target phases."""

    protocol: str = "full"
    lr: float = 5e-5
    adapter_lr: float = 2e-3
    batch_size: int = 32
    lora_r: int = 8
    device: str = "cpu"


def _is_head(name: str) -> bool:
    return bool(set(name.split(".")) & _HEAD_NAMES)


def build_model(base_model: str, task: TaskData, seed: int, recipe: Recipe,
                encoder_state: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """The base model with a new head for ``task`` (initialised from ``seed``); ``encoder_state`` (a source
    model's non-head weights, or its LoRA weights for ``adapter``) is loaded on top when given."""
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    problem_type = "regression" if task.problem == "regression" else "single_label_classification"
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model, num_labels=task.num_labels, problem_type=problem_type, dtype=torch.float32)
    if recipe.protocol == "adapter":
        from peft import LoraConfig, TaskType, get_peft_model

        config = LoraConfig(task_type=TaskType.SEQ_CLS, r=recipe.lora_r, lora_alpha=recipe.lora_r,
                            target_modules=["query", "value"], lora_dropout=0.0)
        torch.manual_seed(seed)
        model = get_peft_model(model, config)
    if encoder_state:
        missing = model.load_state_dict(encoder_state, strict=False)
        if missing.unexpected_keys:
            raise RuntimeError(f"source weights do not fit the model: {missing.unexpected_keys[:3]}")
    return model.to(recipe.device)


def transferable_state(model: nn.Module, recipe: Recipe) -> dict[str, torch.Tensor]:
    """The weights carried from source to target: the encoder (``full``) or the LoRA weights (``adapter``)."""
    state = model.state_dict()
    if recipe.protocol == "adapter":
        return {k: v.detach().cpu().clone() for k, v in state.items() if "lora_" in k}
    return {k: v.detach().cpu().clone() for k, v in state.items() if not _is_head(k)}


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of rows of similar length (sorted within windows of 20 batches)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 20
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def train(model: nn.Module, encoded: Encoded, problem: str, epochs: int, seed: int, recipe: Recipe,
          pad_id: int) -> dict[str, Any]:
    """Train ``model`` in place; returns the loss per epoch and the wall time."""
    params = [p for p in model.parameters() if p.requires_grad]
    lr = recipe.adapter_lr if recipe.protocol == "adapter" else recipe.lr
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    lengths = [len(f["input_ids"]) for f in encoded.features]
    steps = epochs * math.ceil(len(encoded) / recipe.batch_size)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    rng = random.Random(seed)
    torch.manual_seed(seed)
    device = torch.device(recipe.device)
    labels = encoded.labels.to(device)
    losses, started = [], time.perf_counter()
    model.train()
    for epoch in range(epochs):
        total = torch.zeros((), device=device)
        for index in bucketed_batches(lengths, recipe.batch_size, rng):
            batch = {k: v.to(device, non_blocking=True) for k, v in collate(encoded, index, pad_id).items()}
            loss = loss_fn(model(**batch).logits, labels[index], problem)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.detach() * len(index)
        mean = float(total) / len(encoded)
        if not math.isfinite(mean):
            raise RuntimeError(f"loss became {mean} in epoch {epoch + 1}")
        losses.append(mean)
    return {"train_loss": losses, "train_s": round(time.perf_counter() - started, 3)}


@torch.no_grad()
def score(model: nn.Module, encoded: Encoded, problem: str, pad_id: int, batch_size: int = 64) -> dict[str, float]:
    """Validation metrics (length-sorted batches); ``metric`` holds the primary one."""
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded.features[i]["input_ids"]))
    chunks = []
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate(encoded, index, pad_id).items()}
        chunks.append(model(**batch).logits.float())
    outputs = torch.cat(chunks).cpu()
    predictions = torch.empty_like(outputs)
    predictions[torch.tensor(order)] = outputs
    values = predictions.numpy()
    if problem == "regression":
        values = values.squeeze(-1)
    metrics = compute_metrics(values, encoded.labels.numpy(), problem)
    metrics["metric"] = metrics[primary_metric(problem)]
    return metrics

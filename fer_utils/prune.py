"""Magnitude pruning with fine-tuning (Keras 3 has no pruning API, so it lives here).

Each kernel keeps its largest-magnitude entries: ``sparsity`` of every
convolution and dense kernel is set to zero, then the model is fine-tuned with
the zeros held in place after every step, so a ``pruned-<codec>`` file can skip
them.
"""
from __future__ import annotations

import keras
import numpy as np

from . import compress


def magnitude_masks(model, sparsity: float) -> dict[int, np.ndarray]:
    """Per-kernel masks keeping the (1 - sparsity) largest |w| of each kernel."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    masks = {}
    for i, (layer, var, role) in enumerate(compress.weight_slots(model)):
        if compress.is_kernel(layer, role):
            w = np.abs(np.asarray(var.numpy()))
            k = int(np.floor(sparsity * w.size))
            if k == 0:
                masks[i] = np.ones(w.shape, bool)
                continue
            threshold = np.partition(w.ravel(), k - 1)[k - 1]
            masks[i] = w > threshold
    return masks


def apply_masks(model, masks: dict[int, np.ndarray]) -> None:
    slots = compress.weight_slots(model)
    for i, mask in masks.items():
        var = slots[i][1]
        var.assign(np.where(mask, np.asarray(var.numpy()), 0).astype(np.float32))


class _HoldZeros(keras.callbacks.Callback):
    def __init__(self, target, masks):
        super().__init__()
        self.target, self.masks = target, masks  # the pruned model inside the training wrapper

    def on_train_batch_end(self, batch, logs=None):
        apply_masks(self.target, self.masks)


def prune(model, sparsity: float, prepared: dict, epochs: int = 3, batch_size: int = 64, seed: int = 0,
          learning_rate: float = 2e-4, verbose: int = 2):
    """A pruned, fine-tuned copy of ``model`` (the original is left alone)."""
    from .recipe import fit_targets, training_model

    twin = compress._clone(model)
    masks = magnitude_masks(twin, sparsity)
    apply_masks(twin, masks)
    if epochs > 0:
        x, y = prepared["train"]
        xv, yv = prepared["val"]
        wrapper = training_model(twin, seed)
        wrapper.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy",
                        metrics=["accuracy"])
        wrapper.fit(x, fit_targets(y), batch_size=batch_size, validation_data=(xv, fit_targets(yv)),
                    epochs=epochs, callbacks=[_HoldZeros(twin, masks)], verbose=verbose, shuffle=True)
        apply_masks(twin, masks)
    return twin

"""Observe what each named linear of a model receives: the one forward-pre-hook loop behind the
references of notebook 08's calibration (per-channel max|x|) and notebook 09's Hessians (2 Σ x xᵀ).

``observe_linear_inputs(model, windows, names, update)`` runs ``model(input_ids=row[None])`` for each
row of ``windows`` (n, seq) under ``torch.no_grad()``, calls ``update(name, x)`` with each named
linear's input flattened to (tokens, in_features), and removes its hooks afterwards even when the
forward fails, so the model is left as it came.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


def observe_linear_inputs(model: nn.Module, windows: torch.Tensor, names: list[str],
                          update: Callable[[str, torch.Tensor], None]) -> None:
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no module named {missing[:3]} in the model (names come from model.named_modules())")

    def hook_for(name):
        def hook(_module, args):
            x = args[0].detach()
            update(name, x.reshape(-1, x.shape[-1]))
        return hook

    handles = [modules[n].register_forward_pre_hook(hook_for(n)) for n in names]
    try:
        with torch.no_grad():
            for row in windows:
                model(input_ids=row[None])
    finally:
        for h in handles:
            h.remove()

"""Seeded, explicit parameter initialisation for the zoo's models.

Models are built inside ``torch.random.fork_rng`` (so PyTorch's default initialisation does not
move the global RNG) and then every parameter is re-initialised from a local
``torch.Generator``. The same seed gives the same weights on any machine, whatever the state
of the global RNG, and building a model never changes that state.

Schemes:

- ``"keras"``: what the Keras models of the Break-Even paper had: Glorot-uniform kernels, zero
  biases, embeddings U(-0.05, 0.05), LSTM recurrent kernel orthogonal and forget-gate bias 1.
- ``"he"``: He et al. (2015) for conv nets: conv kernels N(0, 2 / fan_out), batch norm 1 / 0,
  linear layers as PyTorch's default.
- ``"torch"``: PyTorch's own defaults (Kaiming-uniform with a = sqrt(5), bias
  U(-1/sqrt(fan_in), 1/sqrt(fan_in))), drawn from the local generator.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._errors import _choice

SCHEMES = ("keras", "he", "torch")


def _torch_default(weight: torch.Tensor, bias: torch.Tensor | None, g: torch.Generator) -> None:
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=g)
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound, generator=g)


def _init_lstm(module: nn.Module, scheme: str, g: torch.Generator) -> None:
    hidden = module.hidden_size
    if scheme == "keras":
        nn.init.xavier_uniform_(module.weight_ih, generator=g)
        nn.init.orthogonal_(module.weight_hh, generator=g)  # Keras: one orthogonal (H x 4H) kernel
        nn.init.zeros_(module.bias)
        module.bias.data[hidden : 2 * hidden] = 1.0  # unit forget bias (gate order i, f, g, o)
    else:
        bound = 1.0 / math.sqrt(hidden)
        for p in (module.weight_ih, module.weight_hh, module.bias):
            nn.init.uniform_(p, -bound, bound, generator=g)


def init_parameters(model: nn.Module, scheme: str, seed: int) -> nn.Module:
    """Re-initialise every parameter of ``model`` in place from ``torch.Generator().manual_seed(seed)``.

    Modules are visited in ``model.modules()`` order, so the draw is a function of the
    architecture and the seed only. Raises ``RuntimeError`` if a parameter is left untouched
    (a module type this function does not know).
    """
    _choice("init scheme", scheme, SCHEMES)
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    done: set[int] = set()
    with torch.no_grad():
        for module in model.modules():
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
                is_conv = isinstance(module, (nn.Conv1d, nn.Conv2d))
                if scheme == "keras":
                    nn.init.xavier_uniform_(module.weight, generator=g)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                elif scheme == "he" and is_conv:
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=g)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
                else:
                    _torch_default(module.weight, module.bias, g)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()
            elif isinstance(module, nn.Embedding):
                if scheme == "keras":
                    nn.init.uniform_(module.weight, -0.05, 0.05, generator=g)
                else:
                    nn.init.normal_(module.weight, generator=g)
            elif hasattr(module, "weight_hh") and hasattr(module, "hidden_size"):
                _init_lstm(module, scheme, g)
            else:
                raise RuntimeError(f"init_parameters: no rule for module type {type(module).__name__}")
            done.update(id(p) for p in own)
    missing = [n for n, p in model.named_parameters() if id(p) not in done]
    if missing:
        raise RuntimeError(f"init_parameters left parameters uninitialised: {missing}")
    return model

"""The object every measurement works on: a model, its loss, and fixed curvature batches.

``Problem`` evaluates the loss as a pure function of one flat vector ``theta`` of the selected
parameters (``torch.func.functional_call``), so that Hessian-vector products, per-example
gradients and interpolations never touch the model's ``.grad``, buffers, mode or the RNG.

Measurement rules
-----------------
* Dropout and every other train-time behaviour is off (modules are put in eval mode for the
  duration of a call and restored afterwards).
* Attention runs on twice-differentiable kernels: the math kernel of scaled dot-product
  attention and no fused fast path of ``nn.MultiheadAttention`` / ``nn.TransformerEncoder``
  (global settings, switched for the call and restored; see :meth:`Problem.measuring`).
* Batch norm, ``bn_mode="eval"``: running statistics are used (the loss of the model as
  deployed).
* Batch norm, ``bn_mode="train"``: each fixed batch is normalised with its own statistics, and
  the running statistics are left untouched (``track_running_stats`` is switched off for the call):
  the loss training steps on.
* Batch norm, ``bn_mode=None`` (not chosen): ``"eval"``, with one warning when the model has
  batch-norm layers (the two modes measure different losses; choose one to silence it).
* Every quantity is of the **mean loss over the examples** (the papers' L): the loss of a batch is
  its mean over the examples whatever the loss's reduction (a ``reduction="sum"`` loss is divided
  by the batch's number of examples, the first dimension of the targets), and batches combine as
  ``sum_b (n_b / N) * loss_b``, the mean over all N examples whatever the split. The reduction is
  read from the loss's ``reduction`` attribute (torch loss modules) or from the default of a
  ``reduction`` argument of a function; otherwise it must be declared (``reduction=``).
* Data parallel (``distributed=True`` or ``process_group=...``): the batches are this rank's
  shard, and every loss, gradient and Hessian product is of the mean loss over the union of the
  shards, ``sum_r (N_r / N) L_r``: each batch is weighted by ``n_b / N`` with N the examples of
  all ranks (summed once, here), and the ranks' weighted sums are all-reduced, so unequal shards
  are right and every rank gets the same result. The parameters must be equal on every rank
  (DDP keeps them so).
"""
from __future__ import annotations

import contextlib
import fnmatch
import inspect
import warnings
from typing import Callable

import torch
from torch import nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from ._batches import Batch, as_batches, check_batch, place, place_inputs
from ._dist import Comm, resolve_comm
from ._flat import FlatSpec

__all__ = ["Problem", "Batch"]

_BN_MODES = ("eval", "train")
_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)
_REDUCTIONS = ("mean", "sum")  # and "batchmean" (nn.KLDivLoss), already a mean over the examples


def _resolve_bn_mode(model: nn.Module, bn_mode: str | None, *, stacklevel: int = 2) -> str:
    """``bn_mode`` checked; ``None`` (not chosen) is ``"eval"``, with a warning when ``model`` has
    batch-norm layers, since the two modes then measure different losses."""
    if bn_mode is None:
        if any(isinstance(m, _BN_TYPES) for m in model.modules()):
            warnings.warn(
                "the model has batch-norm layers and bn_mode was not chosen; measuring with bn_mode='eval'. "
                "The modes measure different losses: 'eval' normalises with the running statistics (the loss of "
                "the model as deployed), 'train' normalises each fixed batch with its own statistics (the loss "
                "training steps on); early in training they can differ several-fold, and Delta L, interpolation and "
                "the curvature follow the mode. Pass bn_mode='eval' or bn_mode='train' to choose and silence this.",
                UserWarning,
                stacklevel=stacklevel + 1,
            )
        return "eval"
    if bn_mode not in _BN_MODES:
        raise ValueError(f"bn_mode must be one of {_BN_MODES} or None (not chosen: 'eval'), got {bn_mode!r}")
    return bn_mode


def _reduction(loss_fn: Callable, declared: str | None) -> str:
    """How ``loss_fn`` reduces over the examples of a batch: ``"mean"`` or ``"sum"``.

    Read from ``loss_fn.reduction`` (torch loss modules), else from the default of a ``reduction``
    argument of its signature (``F.cross_entropy``, a ``functools.partial`` of it), else
    ``declared``; never guessed."""
    known, where = getattr(loss_fn, "reduction", None), "loss_fn.reduction ="
    if known is None:
        try:
            param = inspect.signature(loss_fn).parameters.get("reduction")
        except (TypeError, ValueError):
            param = None
        if param is not None and isinstance(param.default, str):
            known, where = param.default, "loss_fn's default reduction ="
    if known is None:
        if declared is None:
            raise ValueError(
                f"cannot tell whether loss_fn ({getattr(loss_fn, '__name__', type(loss_fn).__name__)}) returns the mean "
                "or the sum of the losses of a batch's examples (it has no `reduction` attribute); declare it: pass "
                "reduction='mean' or reduction='sum' (to Problem or Scope). Every quantity is measured on the mean loss."
            )
        known, where = declared, "reduction ="
    elif declared is not None and declared != ("mean" if known == "batchmean" else known):
        raise ValueError(f"reduction={declared!r} contradicts {where} {known!r}; leave reduction= out or make them agree")
    known = "mean" if known == "batchmean" else known
    if known not in _REDUCTIONS:
        raise ValueError(
            f"loss reduction must be 'mean' or 'sum', got {where} {known!r}"
            + (" (per-example losses; sgdscope needs one scalar per batch: build the loss with reduction='mean' or 'sum')"
               if known == "none" else "")
        )
    return known


def _select(model: nn.Module, params) -> dict[str, nn.Parameter]:
    named = dict(model.named_parameters())
    if params is None:
        sel = {n: p for n, p in named.items() if p.requires_grad}
    else:
        patterns = [params] if isinstance(params, str) else list(params)
        sel = {}
        for pat in patterns:
            hits = [n for n in named if fnmatch.fnmatchcase(n, pat)]
            if not hits:
                raise ValueError(
                    f"params: {pat!r} matches no parameter; available: {', '.join(named)}"
                )
            sel.update((n, named[n]) for n in hits)
        sel = {n: named[n] for n in named if n in sel}  # model order
    if not sel:
        raise ValueError("params: the selection is empty (no trainable parameters?)")
    dtypes = {p.dtype for p in sel.values()}
    devices = {p.device for p in sel.values()}
    if len(dtypes) > 1 or len(devices) > 1:
        raise ValueError(f"selected parameters must share one dtype and device, got {dtypes} / {devices}")
    return sel


class Problem:
    """A model, a loss and fixed batches, evaluated as a function of a flat parameter vector.

    Args:
        model: any ``nn.Module``.
        loss_fn: ``loss_fn(outputs, targets) -> scalar``, the mean or the sum of the batch's
            per-example losses, as its ``reduction`` attribute says (torch loss modules; ``"none"``
            is refused) or the default of its ``reduction`` argument; a function without either
            needs ``reduction=``.
        batches: ``(inputs, targets)`` pairs: one pair, a list, a map-style Dataset or a DataLoader
            (read once; see :mod:`sgdscope._batches`). Floating inputs are cast to the parameters'
            dtype and moved to their device once, here.
        params: ``None`` (all parameters with ``requires_grad``), or names / glob patterns
            (``"fc1.*"``) selecting a block of parameters, for per-layer curvature.
        bn_mode: ``"eval"``, ``"train"`` or ``None``, not chosen: ``"eval"``, with a warning for a
            model with batch norm (see the module docstring).
        reduction: ``"mean"`` or ``"sum"``, what ``loss_fn`` returns over a batch's examples, for
            a function that does not say (an error asks for it); must agree where it does.
            Every quantity is measured on the mean loss over the examples either way.
        distributed: ``batches`` are this rank's shard of the data, and the loss is the mean over
            the union of every rank's shard, on the default ``torch.distributed`` process group
            (initialised by the caller, e.g. under ``torchrun``); every rank builds the Problem and
            makes the same calls. See the module docstring and ``docs/engine.md``.
        process_group: as ``distributed=True``, on this ``ProcessGroup``.

    Attributes:
        dim: D, the number of selected parameters.
        spec: names, shapes and offsets of the selection in the flat vector.
        num_examples: N, the examples over all batches (of every rank's shard when distributed).
        shard_examples: the examples of this rank's batches (N without a process group).
        comm: the process group (:class:`~sgdscope._dist.Comm`: ``rank``, ``size``) or None.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable,
        batches,
        *,
        params=None,
        bn_mode: str | None = None,
        reduction: str | None = None,
        distributed: bool = False,
        process_group=None,
    ):
        if isinstance(model, nn.parallel.DistributedDataParallel):
            raise TypeError(
                "model is a DistributedDataParallel wrapper, whose forward synchronises gradients; pass the wrapped "
                "module, model.module (and distributed=True to measure over every rank's data)"
            )
        self.model = model
        self.loss_fn = loss_fn
        self.bn_mode = _resolve_bn_mode(model, bn_mode)
        self.reduction = _reduction(loss_fn, reduction)
        selected = _select(model, params)
        self.spec = FlatSpec.of(selected)
        first = next(iter(selected.values()))
        self.dtype, self.device = first.dtype, first.device
        self.batches = [place(b, device=self.device, dtype=self.dtype) for b in as_batches(batches)]
        sizes = [len(b[1]) for b in self.batches]
        self.comm: Comm | None = resolve_comm(distributed, process_group, self.device)
        self.shard_examples = sum(sizes)
        if self.comm is None:
            self.num_examples = self.shard_examples
        else:
            self.comm.check_same(self.dim, "D, the number of selected parameters,")
            self.num_examples = sum(self.comm.sizes(self.shard_examples))
        # batch_loss is a mean: sum_b (n_b / N) loss_b, N over every rank's batches (summed across ranks after)
        self.weights = [n / self.num_examples for n in sizes]

    # ----------------------------------------------------------------- plumbing
    def place(self, batch, what: str = "batch") -> Batch:
        """An ``(inputs, targets)`` pair, checked (:func:`~sgdscope._batches.check_batch`), on the
        parameters' device with floating inputs in their dtype."""
        return place(check_batch(batch, what), device=self.device, dtype=self.dtype)

    def place_inputs(self, x):
        """Move inputs (a tensor or a tuple of tensors) to the parameters' device; cast floating ones to their dtype."""
        return place_inputs(x, device=self.device, dtype=self.dtype)

    def check_theta(self, theta, what: str = "theta", *, rows: bool = False) -> torch.Tensor:
        """A flat parameter vector, checked: detached, on the parameters' device and dtype.

        ``theta`` is a (D,) vector of the selected parameters, or with ``rows=True`` a (P, D) stack
        of them; ``None`` (for a (D,) vector) is the current parameters, :meth:`theta`. Not a copy
        where the given tensor already has the device and dtype (clone it to keep it).

        Raises:
            ValueError: another shape; the message names ``what``, the expected and the given shape.
        """
        if theta is None and not rows:
            return self.theta()
        if theta is not None and not isinstance(theta, torch.Tensor):
            theta = torch.as_tensor(theta, dtype=self.dtype)
        shape = None if theta is None else tuple(theta.shape)
        if rows and not (shape is not None and len(shape) == 2 and shape[1] == self.dim):
            raise ValueError(f"{what}: expected (P, {self.dim}) rows of parameter vectors, got shape {shape}")
        if not rows and shape != (self.dim,):
            raise ValueError(f"{what}: expected a ({self.dim},) parameter vector, got shape {shape}")
        return theta.detach().to(device=self.device, dtype=self.dtype)

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def has_batchnorm(self) -> bool:
        return any(isinstance(m, _BN_TYPES) for m in self.model.modules())

    def theta(self) -> torch.Tensor:
        """The current values of the selected parameters as a detached (D,) vector (a copy)."""
        named = dict(self.model.named_parameters())
        return self.spec.flatten({n: named[n].detach() for n in self.spec.names})  # torch.cat: a new tensor

    @contextlib.contextmanager
    def measuring(self):
        """Put the model in measurement mode for the duration; restore it exactly afterwards.

        Besides the modules' modes (see the module docstring), two global torch settings, restored
        afterwards: scaled dot-product attention uses its math kernel (the fused flash / efficient
        kernels have no second derivative and no forward-mode rule), and the fast path of
        ``nn.MultiheadAttention`` / ``nn.TransformerEncoder`` in eval mode is off (its fused kernels
        have none either). Same values; a few microseconds per call, whatever the model.
        """
        saved = [(m, m.training, getattr(m, "track_running_stats", None)) for m in self.model.modules()]
        fastpath = torch.backends.mha.get_fastpath_enabled()
        try:
            for m in self.model.modules():
                if isinstance(m, _BN_TYPES) and self.bn_mode == "train":
                    m.training = True
                    m.track_running_stats = False
                else:
                    m.training = False
            torch.backends.mha.set_fastpath_enabled(False)
            with sdpa_kernel(SDPBackend.MATH):
                yield
        finally:
            torch.backends.mha.set_fastpath_enabled(fastpath)
            for m, training, track in saved:
                m.training = training
                if track is not None:
                    m.track_running_stats = track

    def frozen_params(self) -> dict[str, torch.Tensor]:
        chosen = set(self.spec.names)
        return {n: p.detach() for n, p in self.model.named_parameters() if n not in chosen}

    # ----------------------------------------------------------------- pure functions
    def forward(self, theta, inputs, *, frozen=None):
        """Model outputs at parameters ``theta`` (call inside :meth:`measuring`): the flat (D,) vector,
        or the selected tensors themselves, a tuple in the order of ``spec.names`` (so that a
        derivative comes out per tensor, with no flat copy)."""
        params = dict(self.frozen_params() if frozen is None else frozen)
        params.update(self.spec.unflatten(theta) if isinstance(theta, torch.Tensor) else zip(self.spec.names, theta))
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        return functional_call(self.model, params, args)

    def outputs(self, theta: torch.Tensor, x, *, chunk: int = 1024) -> torch.Tensor:
        """Model outputs at ``theta`` for inputs ``x`` in measurement mode, ``chunk`` rows at a time."""
        theta = self.check_theta(theta)
        frozen = self.frozen_params()
        with self.measuring(), torch.no_grad():
            return torch.cat([self.forward(theta, self.place_inputs(x[i : i + chunk]), frozen=frozen) for i in range(0, len(x), chunk)])

    def mean_loss(self, outputs, targets: torch.Tensor) -> torch.Tensor:
        """``loss_fn(outputs, targets)`` as the mean over the examples (a sum is divided by their number)."""
        loss = self.loss_fn(outputs, targets)
        if loss.ndim != 0:
            raise ValueError(
                f"loss_fn returned a tensor of shape {tuple(loss.shape)}, not a scalar: it must return the mean or "
                "the sum of the batch's losses (declare which with reduction=)"
            )
        return loss / targets.shape[0] if self.reduction == "sum" else loss

    def batch_loss(self, theta, batch: Batch, *, frozen=None) -> torch.Tensor:
        """The mean loss over the examples of one batch at ``theta`` (flat, or per tensor as for
        :meth:`forward`; inside :meth:`measuring`)."""
        x, y = batch
        return self.mean_loss(self.forward(theta, x, frozen=frozen), y)

    def loss(self, theta: torch.Tensor | None = None) -> torch.Tensor:
        """The mean loss over all examples at ``theta`` (default: the model's current parameters)."""
        theta = self.check_theta(theta)
        frozen = self.frozen_params()
        with self.measuring(), torch.no_grad():
            loss = sum(w * self.batch_loss(theta, b, frozen=frozen) for w, b in zip(self.weights, self.batches))
        return loss if self.comm is None else self.comm.sum(loss.reshape(1))[0]

    def loss_and_grad(self, theta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean loss and its (D,) gradient over all examples, by ``torch.func.grad``."""
        theta = self.check_theta(theta)
        frozen = self.frozen_params()
        total_l, total_g = None, torch.zeros_like(theta)
        with self.measuring():
            for w, b in zip(self.weights, self.batches):
                g, l = torch.func.grad_and_value(lambda t: self.batch_loss(t, b, frozen=frozen))(theta)
                total_g.add_(g, alpha=w)
                total_l = w * l.detach() if total_l is None else total_l + w * l.detach()
        if self.comm is not None:  # one all-reduce for both: [gradient, loss]
            both = self.comm.sum(torch.cat([total_g, total_l.reshape(1).to(total_g.dtype)]))
            total_l, total_g = both[-1], both[:-1]
        return total_l, total_g

    def subproblem(self, batches=None, *, params=None) -> "Problem":
        """The same model and loss on other batches and/or another parameter selection (on the same
        process group: when distributed, ``batches`` are this rank's shard, and every rank calls it)."""
        return Problem(
            self.model,
            self.loss_fn,
            self.batches if batches is None else batches,
            params=list(self.spec.names) if params is None else params,
            bn_mode=self.bn_mode,
            reduction=self.reduction,
            distributed=self.comm is not None,
            process_group=None if self.comm is None else self.comm.group,
        )

    def __repr__(self) -> str:
        ranks = "" if self.comm is None else f", rank={self.comm.rank} of {self.comm.size}, shard N={self.shard_examples}"
        return (
            f"Problem(D={self.dim}, batches={len(self.batches)}, N={self.num_examples}{ranks}, "
            f"bn_mode={self.bn_mode!r}, dtype={self.dtype}, device={self.device})"
        )

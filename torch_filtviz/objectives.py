"""Objectives in torch: what the loop maximizes, one value per batch element (SPEC.md §5, §16).

The objectives themselves and their algebra are framework-free (``filtviz_core.objectives``,
re-exported here: ``channel``, ``neuron``, ``direction``, ``diversity``, ``sum``);
:func:`compile_objective` turns one into a function of the captured tensors, computed in fp32
whatever the network's precision. :func:`interior_mean` is SPEC §5's per-filter objective (each
element its own filter's interior mean); on a vision transformer's (N, T, C) token layer a channel is
averaged over the tokens its ``tokens=`` names (:func:`token_mean`: the patch tokens by default, the
class token excluded) and a neuron is one patch token (the centre of the patch grid) or the class
token. :func:`filter_objective` and :func:`objective_values` give
values and input gradients of pictures without running an optimization (the parity suite).

    >>> from torch_filtviz import objectives as obj
    >>> print(obj.channel("block4_conv3", 12) - 100 * obj.diversity("block4_conv3"))
    channel(block4_conv3, 12) - 100 * diversity(block4_conv3)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

from filtviz_core import algorithm as alg
from filtviz_core import objectives as core
from filtviz_core.errors import FiltvizError
from filtviz_core.objectives import Objective, channel, direction, diversity, neuron, sum  # noqa: A004
from torch_filtviz.targets import Target, Tokens, channel_axis, channel_count, channels_first, token_grid

__all__ = [
    "Objective",
    "channel",
    "compile_objective",
    "direction",
    "diversity",
    "filter_objective",
    "interior_mean",
    "neuron",
    "objective_values",
    "sum",
    "token_mean",
]


def interior_mean(act: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, channel_dim: int = 1) -> torch.Tensor:
    """Per element ``rows[i]``: mean of channel ``index[i]`` over the interior of its map, in fp32.

    ``act`` is (N, C, H, W) (``channel_dim=1``), (N, H, W, C) (``channel_dim=-1``, e.g. the output
    of an ``nn.Linear`` applied to channels-last maps) or (N, C) units.
    """
    if act.ndim == 2:
        return act[rows, index].float()
    own = act[rows, :, :, index] if channel_dim in (-1, act.ndim - 1) else act[rows, index]  # (n, h, w)
    hs, ws = alg.interior(own.shape[1], own.shape[2])
    return own[:, hs, ws].float().mean(dim=(1, 2))


def filter_objective(
    model: nn.Module,
    layer: str,
    filters: int | str | Iterable[int],
    images: torch.Tensor,
    objective: str = alg.DEFAULT_OBJECTIVE,
) -> torch.Tensor:
    """The objective of each filter for its own image: ``(F,)`` fp32, differentiable w.r.t. ``images``.

    ``images``: (F, 3, H, W) RGB pixels (0-255), one per filter, on the model's device;
    ``filters``: F indices (or a string such as ``"0-3"``). The forward pass stops right after the
    layer, exactly as in the ascent, so ``torch.autograd.grad(values.sum(), images)`` gives each
    filter's input gradient.
    """
    from torch_filtviz.hooks import capture, resolve_target

    alg.check_objective(objective)
    target = resolve_target(model, layer, objective)
    with capture(model, target) as cap:
        act = cap(images)[target.name]
    count = channel_count(tuple(act.shape), target.channel_dim)
    chosen = alg.parse_filters(filters, int(count), layer)
    if len(chosen) != images.shape[0]:
        raise ValueError(f"{len(chosen)} filters for {images.shape[0]} images: give one image per filter")
    index = torch.tensor(chosen, device=images.device)
    rows = torch.arange(len(chosen), device=images.device)
    if target.tokens is not None and act.ndim == 3:
        return token_mean(act, index, rows, target.tokens)
    return interior_mean(act, index, rows, target.channel_dim)


def token_mean(
    act: torch.Tensor, index: torch.Tensor, rows: torch.Tensor, tokens: Tokens, which: str = core.DEFAULT_TOKENS
) -> torch.Tensor:
    """Per element ``rows[i]``: channel ``index[i]`` of a (N, T, C) token tensor over the tokens ``which``
    names, in fp32: ``"patches"`` the mean over the patch tokens (the ``tokens.prefix`` class/register
    tokens excluded), ``"cls"`` the class token (token 0), ``"all"`` the mean over all T tokens."""
    own = act[rows, :, index]  # (n, T)
    if which == "cls":
        return own[:, 0].float()
    if which == "all":
        return own.float().mean(dim=1)
    return own[:, tokens.prefix :].float().mean(dim=1)


def check_tokens(term: core.Term, target: Target) -> None:
    """One line when a term's ``tokens=`` does not fit its layer: "cls"/"all" on a layer without tokens,
    "cls" on a token layer without a class token."""
    which = term.tokens
    if which is None:
        return
    if target.tokens is None:
        raise FiltvizError(
            f"{term.describe()}: tokens={which} reads a vision transformer's (N, T, C) token layer; "
            f"{term.layer} has no tokens (conv maps and units take the default, tokens=patches)"
        )
    if which == "cls" and not (target.tokens.class_token and target.tokens.prefix > 0):
        raise FiltvizError(
            f"{term.describe()}: {term.layer} has no class token ({target.tokens.source}); "
            "use tokens=patches or tokens=all"
        )


# --- any objective (filtviz_core.objectives), evaluated on captured torch tensors ------------------

Compiled = Callable[[Mapping[str, torch.Tensor]], torch.Tensor]
TermFn = Callable[[torch.Tensor], torch.Tensor]  # one term, on its layer's captured tensor


def _interior_positions(t: torch.Tensor) -> torch.Tensor:
    """(N, h, w) -> (N,) mean over the interior of each map (the border rule), in fp32."""
    hs, ws = alg.interior(t.shape[1], t.shape[2])
    return t[:, hs, ws].float().mean(dim=(1, 2))


def _term_fn(term: core.Term, target: Target, batch_size: int, device: torch.device) -> TermFn:
    """One term as a function of its layer's captured tensor -> (B,) fp32 values."""
    rows = torch.arange(batch_size, device=device)
    channel_dim = target.channel_dim
    check_tokens(term, target)
    tokens = target.tokens
    which = term.tokens or core.DEFAULT_TOKENS
    if term.kind == "channel":
        index = torch.tensor(term.channel_for(batch_size), device=device)
        if tokens is not None:
            return lambda act: token_mean(act, index, rows, tokens, which)
        return lambda act: interior_mean(act, index, rows, channel_dim)
    if term.kind == "neuron":
        index = torch.tensor(term.channel_for(batch_size), device=device)

        def neuron(act: torch.Tensor) -> torch.Tensor:
            if tokens is not None and act.ndim == 3 and which == "cls":
                return act[rows, 0, index].float()
            a = channels_first(target, act)
            if a.ndim == 2:
                return a[rows, index].float()
            y, x = term.position(a.shape[2], a.shape[3])
            return a[rows, index, y, x].float()

        return neuron
    if term.kind == "direction":
        unit = torch.from_numpy(term.unit_vector()).to(device)

        def direction(act: torch.Tensor) -> torch.Tensor:
            a = channels_first(target, act).float()
            if a.ndim == 2:
                return a @ unit
            if tokens is not None and act.ndim == 3:  # token layers: the mean over the patch tokens, as channel
                return torch.einsum("nchw,c->nhw", a, unit).mean(dim=(1, 2))
            return _interior_positions(torch.einsum("nchw,c->nhw", a, unit))

        return direction
    if term.kind == "diversity":
        group = term.group or batch_size

        def diversity(act: torch.Tensor) -> torch.Tensor:
            a = channels_first(target, act).float()
            flat = a.reshape(a.shape[0], a.shape[1], -1)  # (B, C, positions)
            grams = torch.bmm(flat, flat.transpose(1, 2)).reshape(a.shape[0], -1)
            grams = grams / grams.square().sum(dim=1, keepdim=True).clamp_min(core.GRAM_EPS).sqrt()
            g = grams.reshape(-1, group, grams.shape[1])
            sim = torch.bmm(g, g.transpose(1, 2))  # (B / group, group, group)
            own = torch.diagonal(sim, dim1=1, dim2=2)
            return ((sim.sum(dim=2) - own) / group).reshape(-1)

        return diversity
    raise FiltvizError(f"unknown objective kind {term.kind!r}; valid: {', '.join(core.KINDS)}")


def compile_objective(
    objective: core.Objective, targets: Mapping[str, Target], batch_size: int, device: torch.device
) -> Compiled:
    """``objective`` as a function ``{layer: captured tensor} -> (B,)`` fp32 values, one per element.

    A lone term of weight 1 is returned as it is, so SPEC.md's per-filter objective keeps its exact
    arithmetic; otherwise the weighted terms are summed in order.
    """
    parts = []
    for weight, term in objective.terms:
        fn = _term_fn(term, targets[term.layer], batch_size, device)
        if term.batch is not None:
            mask = torch.zeros(batch_size, dtype=torch.bool, device=device)
            mask[term.batch] = True
            fn = _restricted(fn, mask)
        parts.append((weight, term.layer, fn))
    if len(parts) == 1 and parts[0][0] == 1.0:
        _, layer, fn = parts[0]
        return lambda acts: fn(acts[layer])

    def total(acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        out = None
        for weight, layer, fn in parts:
            value = fn(acts[layer]) * weight
            out = value if out is None else out + value
        assert out is not None
        return out

    return total


def _restricted(fn: TermFn, mask: torch.Tensor) -> TermFn:
    return lambda act: torch.where(mask, fn(act), torch.zeros((), device=mask.device))


def objective_values(
    model: nn.Module, objective: core.Objective, images: torch.Tensor, activation: str = alg.DEFAULT_OBJECTIVE
) -> torch.Tensor:
    """``objective`` for a batch of pixel ``images`` (B, C, H, W): ``(B,)`` fp32, differentiable with
    respect to the images; for values and input gradients without running an optimization (parity)."""
    from torch_filtviz.hooks import capture, resolve_target

    core.check_objective(objective)
    targets = {layer: resolve_target(model, layer, activation) for layer in objective.layers()}
    with capture(model, list(targets.values())) as cap:
        acts = cap(images)
    shapes = {layer: unit_shape(t, tuple(acts[layer].shape)) for layer, t in targets.items()}
    objective.check(shapes, int(images.shape[0]))
    return compile_objective(objective, targets, int(images.shape[0]), images.device)(acts)


def unit_shape(target: Target, shape: tuple[int, ...]) -> tuple[int, tuple[int, int] | None]:
    """(units, map size (h, w) or None for (N, C) units) of a captured tensor of ``shape``; for a
    (N, T, C) token tensor the map is its patch grid (where a neuron's x and y lie)."""
    if len(shape) == 3 and target.tokens is not None:
        return channel_count(shape, target.channel_dim), token_grid(target.tokens, int(shape[1]))
    if len(shape) != 4:
        return channel_count(shape, target.channel_dim), None
    axis = channel_axis(target.channel_dim, 4)
    h, w = (shape[2], shape[3]) if axis == 1 else (shape[1], shape[2])
    return channel_count(shape, target.channel_dim), (int(h), int(w))

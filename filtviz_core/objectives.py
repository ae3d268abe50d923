"""What an optimization maximizes, written once for both frameworks: objectives and their algebra.

An :class:`Objective` is a weighted sum of :class:`Term` s. A term names a layer, a kind and its
arguments; each framework evaluates the kinds on the tensors its resolver captured for the named
layers (``torch_filtviz.objectives``, ``tf_reference.objectives``), giving **one value per batch
element**. The vocabulary is Lucent's and Lucid's, so their users can write what they already write:

* ``channel(layer, c)``: the mean of channel ``c`` over the interior of its map (the border rule of
  SPEC.md §5); for ``(N, C)`` units, unit ``c`` itself.
* ``neuron(layer, c, x=None, y=None)``: channel ``c`` at one position, column ``x`` and row ``y``
  (default: the centre, ``(H // 2, W // 2)`` as (row, column)).
* ``direction(layer, vector)``: the interior mean of ``<a, v / |v|>``, the activation vector ``a`` at a
  position projected on the unit vector of ``vector`` (length C). ``direction(layer, one_hot(c))``
  equals ``channel(layer, c)``. (Lucid's ``direction`` is this dot product; Lucent's uses the cosine.)
* ``diversity(layer)``: Lucid's penalty, the mean cosine similarity of the batch elements' Gram
  matrices ``G_i = F_i^T F_i`` (``F_i``: the element's map as positions x channels), normalised to unit
  Frobenius norm; element i's value is ``sum_{j != i} <G_i, G_j> / B``, so the batch's sum is Lucid's
  value. Subtract it (``channel(...) - w * diversity(...)``) to make the pictures differ.
* ``batch=i`` restricts a term to batch element ``i`` (its value is 0 for every other element).
* ``tokens=`` (``channel`` and ``neuron``) chooses the tokens of a vision transformer's ``(N, T, C)``
  token layer: ``"patches"`` (the default: ``channel`` averages over the patch tokens, the class token
  excluded; ``neuron`` picks one patch token, the centre of the patch grid ``(rows // 2, cols // 2)``
  unless ``x``/``y`` name a column and row of that grid: token ``P + y * cols + x`` after the ``P``
  prefix tokens), ``"cls"`` (the class token, token 0) or ``"all"`` (``channel`` only: the mean over
  every token, class token included). Conv maps and units take the default only.

Algebra: ``a + b``, ``a - b``, ``-a``, ``w * a``, ``a * w``, ``a / w`` and ``sum([...])`` (the built-in
or :func:`sum`) build new objectives; ``str(objective)`` writes one out in words, as run.json records it.

Two internal kinds serve :func:`visualize_filters` (one picture per filter): ``channel`` and
``neuron`` with a per-element channel (``channel=(c0, c1, ...)``: element i maximizes ``c_i``), and
``diversity`` with ``group=K`` (the penalty within each run of K consecutive elements only).
"""

from __future__ import annotations

import builtins
import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from filtviz_core.errors import FiltvizError

KINDS = ("channel", "neuron", "direction", "diversity")
TOKENS = ("patches", "cls", "all")  # which tokens of a (N, T, C) token layer a channel/neuron term reads
DEFAULT_TOKENS = "patches"
GRAM_EPS = 1e-10  # Lucid's l2_normalize epsilon, on the squared norm


@dataclass(frozen=True)
class Term:
    """One objective of one layer. ``channel``: an index, or one index per batch element."""

    kind: str
    layer: str
    channel: int | tuple[int, ...] | None = None
    x: int | None = None
    y: int | None = None
    vector: tuple[float, ...] | None = field(default=None, repr=False)
    batch: int | None = None
    group: int | None = None  # diversity: the penalty couples runs of `group` consecutive elements
    tokens: str | None = None  # token layers: "cls" or "all"; None = the default, "patches"

    def describe(self) -> str:
        args = [self.layer]
        if self.kind in ("channel", "neuron"):
            args.append(_channel_text(self.channel))
        if self.kind == "neuron" and (self.x is not None or self.y is not None):
            args += [f"x={self.x}", f"y={self.y}"]
        if self.tokens is not None:
            args.append(f"tokens={self.tokens}")
        if self.kind == "direction":
            args.append(f"<{len(self.vector or ())}-vector>")
        if self.group is not None:
            args.append(f"group={self.group}")
        if self.batch is not None:
            args.append(f"batch={self.batch}")
        return f"{self.kind}({', '.join(args)})"

    def as_record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"kind": self.kind, "layer": self.layer}
        for name in ("channel", "x", "y", "batch", "group", "tokens"):
            value = getattr(self, name)
            if value is not None:
                entry[name] = list(value) if isinstance(value, tuple) else value
        if self.vector is not None:
            entry["vector"] = list(self.vector)
        return entry

    def channel_for(self, batch_size: int) -> list[int]:
        """The channel each of ``batch_size`` elements maximizes."""
        if isinstance(self.channel, tuple):
            if len(self.channel) != batch_size:
                raise FiltvizError(f"{self.describe()} names {len(self.channel)} channels for a batch of {batch_size}")
            return list(self.channel)
        return [int(self.channel or 0)] * batch_size

    def check(self, channels: int, map_size: tuple[int, int] | None, batch_size: int) -> None:
        """One clear line when the term does not fit its layer (``channels``, map ``(h, w)`` or None for
        units) or the batch."""
        if self.kind in ("channel", "neuron"):
            # channel and neuron terms always name their channel(s)
            wanted = cast(tuple[int, ...], self.channel if isinstance(self.channel, tuple) else (self.channel,))
            bad = [c for c in wanted if not 0 <= int(c) < channels]
            if bad:
                raise FiltvizError(
                    f"{self.describe()}: channel {bad[0]} is out of range: {self.layer} has "
                    f"{channels} channels (0-{channels - 1})"
                )
        if self.kind == "neuron" and map_size is not None:
            h, w = map_size
            if self.x is not None and not 0 <= self.x < w:
                raise FiltvizError(f"{self.describe()}: x={self.x} lies outside the map's {w} columns (0-{w - 1})")
            if self.y is not None and not 0 <= self.y < h:
                raise FiltvizError(f"{self.describe()}: y={self.y} lies outside the map's {h} rows (0-{h - 1})")
        if self.kind == "direction" and len(self.vector or ()) != channels:
            raise FiltvizError(
                f"direction({self.layer}): the vector has {len(self.vector or ())} entries; "
                f"{self.layer} has {channels} channels"
            )
        if self.batch is not None and not 0 <= self.batch < batch_size:
            raise FiltvizError(
                f"{self.describe()}: batch={self.batch} is outside the batch of {batch_size} (0-{batch_size - 1})"
            )
        if self.group is not None and batch_size % self.group:
            raise FiltvizError(f"{self.describe()}: a batch of {batch_size} is not made of groups of {self.group}")

    def position(self, height: int, width: int) -> tuple[int, int]:
        """(row, column) of a neuron: ``(y, x)``, the centre ``(H // 2, W // 2)`` where not given."""
        return (height // 2 if self.y is None else self.y), (width // 2 if self.x is None else self.x)

    def unit_vector(self) -> np.ndarray:
        """The direction, float32, scaled to unit length."""
        v = np.asarray(self.vector, np.float64)
        return (v / np.linalg.norm(v)).astype(np.float32)


def _channel_text(channel: int | tuple[int, ...] | None) -> str:
    if isinstance(channel, tuple):
        return "[" + ", ".join(str(c) for c in channel) + "]"
    return str(channel)


def _weight_text(w: float) -> str:
    return f"{w:g}"


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms: ``value(element i) = sum_k weights[k] * term_k(element i)``."""

    terms: tuple[tuple[float, Term], ...]

    # -- algebra ----------------------------------------------------------------------------------
    def __add__(self, other: Any) -> Objective:
        if isinstance(other, numbers.Real) and other == 0:
            return self
        if not isinstance(other, Objective):
            return NotImplemented
        return Objective(self.terms + other.terms)

    def __radd__(self, other: Any) -> Objective:  # sum([...]) starts from 0
        if isinstance(other, numbers.Real) and other == 0:
            return self
        return NotImplemented

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Any) -> Objective:
        if not isinstance(other, Objective):
            return NotImplemented
        return self + (-other)

    def __mul__(self, w: Any) -> Objective:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not math.isfinite(float(w)):
            return NotImplemented
        return Objective(tuple((float(w) * k, t) for k, t in self.terms))

    __rmul__ = __mul__

    def __truediv__(self, w: Any) -> Objective:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or float(w) == 0:
            return NotImplemented
        return self * (1.0 / float(w))

    # -- reading ----------------------------------------------------------------------------------
    def layers(self) -> list[str]:
        """The layers the objective reads, in order of first use."""
        return list(dict.fromkeys(t.layer for _, t in self.terms))

    def describe(self) -> str:
        """The objective in words: ``channel(block4_conv3, 12) - 100 * diversity(block4_conv3)``."""
        out = ""
        for i, (w, t) in enumerate(self.terms):
            sign = "-" if w < 0 else "+"
            mag = abs(w)
            text = t.describe() if mag == 1 else f"{_weight_text(mag)} * {t.describe()}"
            out += (f"-{text}" if sign == "-" else text) if i == 0 else f" {sign} {text}"
        return out

    __str__ = describe

    def __repr__(self) -> str:
        return f"Objective({self.describe()})"

    def as_record(self) -> dict[str, Any]:
        """run.json's ``objective`` entry: the words and every term with its weight."""
        return {"text": self.describe(), "terms": [{"weight": w, **t.as_record()} for w, t in self.terms]}

    def check(self, shapes: dict[str, tuple[int, tuple[int, int] | None]], batch_size: int) -> None:
        """Check every term against its layer's ``(channels, map size or None)`` and the batch size."""
        for _, t in self.terms:
            channels, size = shapes[t.layer]
            t.check(channels, size, batch_size)

    @property
    def couples_batch(self) -> bool:
        """Whether one element's value depends on the others (a diversity term): such a batch is one
        unit of work, never split into chunks."""
        return any(t.kind == "diversity" for _, t in self.terms)


# --- constructors --------------------------------------------------------------------------------


def _layer(layer: Any) -> str:
    if not isinstance(layer, str) or not layer:
        raise FiltvizError(f"an objective needs a layer name, got {layer!r}")
    return layer


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise FiltvizError(f"{what} must be a whole number >= 0, got {value!r}")
    return int(value)


def _batch(batch: Any) -> int | None:
    return None if batch is None else _index(batch, "batch")


def _one(term: Term) -> Objective:
    return Objective(((1.0, term),))


def _tokens(tokens: Any, kind: str, x: int | None = None, y: int | None = None) -> str | None:
    """A checked ``tokens=`` argument, stored as None for the default (records stay as they were)."""
    if tokens not in TOKENS:
        raise FiltvizError(f"unknown tokens {tokens!r}; valid: {', '.join(TOKENS)}")
    if kind == "neuron" and tokens == "all":
        raise FiltvizError(
            "a neuron is one token: tokens='patches' (a patch token, by default the centre of the patch grid) "
            "or 'cls' (the class token); 'all' is for channel"
        )
    if tokens == "cls" and (x is not None or y is not None):
        raise FiltvizError("neuron(..., tokens='cls') is the class token: it takes no x or y")
    return None if tokens == DEFAULT_TOKENS else str(tokens)


def channel(layer: str, c: int, batch: int | None = None, tokens: str = DEFAULT_TOKENS) -> Objective:
    """The mean of channel ``c`` of ``layer`` over the interior of its map (SPEC.md §5's objective); on a
    vision transformer's token layer, over its patch tokens (``tokens="patches"``), its class token
    (``"cls"``) or all tokens (``"all"``)."""
    return _one(
        Term("channel", _layer(layer), _index(c, "channel"), batch=_batch(batch), tokens=_tokens(tokens, "channel"))
    )


def neuron(
    layer: str,
    c: int,
    x: int | None = None,
    y: int | None = None,
    batch: int | None = None,
    tokens: str = DEFAULT_TOKENS,
) -> Objective:
    """Channel ``c`` of ``layer`` at column ``x``, row ``y`` (default: the centre of the map); on a token
    layer, one patch token (column ``x``, row ``y`` of the patch grid, default its centre) or, with
    ``tokens="cls"``, the class token."""
    return _one(
        Term(
            "neuron",
            _layer(layer),
            _index(c, "channel"),
            x=None if x is None else _index(x, "x"),
            y=None if y is None else _index(y, "y"),
            batch=_batch(batch),
            tokens=_tokens(tokens, "neuron", x, y),
        )
    )


def direction(layer: str, vector: Sequence[float] | np.ndarray, batch: int | None = None) -> Objective:
    """The interior mean of the activation vectors projected on ``vector`` (scaled to unit length)."""
    v = np.asarray(vector, dtype=np.float64).ravel()
    if v.size == 0 or not np.all(np.isfinite(v)) or not np.any(v):
        raise FiltvizError("direction needs a finite, non-zero vector with one entry per channel")
    return _one(Term("direction", _layer(layer), vector=tuple(float(e) for e in v), batch=_batch(batch)))


def diversity(layer: str) -> Objective:
    """Lucid's diversity penalty over the batch (see the module docstring); subtract it, weighted."""
    return _one(Term("diversity", _layer(layer)))


def sum(objectives: Iterable[Objective]) -> Objective:  # noqa: A001 - the name users write
    """The sum of several objectives (the built-in ``sum`` works too)."""
    items = list(objectives)
    if not items:
        raise FiltvizError("sum of no objectives")
    return builtins.sum(items[1:], items[0])


def per_filter(
    layer: str,
    filters: Sequence[int],
    unit: str = "channel",
    diversity_group: int | None = None,
    diversity_weight: float = 0.0,
    tokens: str = DEFAULT_TOKENS,
) -> Objective:
    """What :func:`visualize_filters` maximizes: element i the channel (or centre neuron) ``filters[i]``,
    minus ``diversity_weight`` times the diversity penalty within groups of ``diversity_group`` elements.
    ``tokens``: which tokens of a token layer (see the module docstring)."""
    if unit not in UNITS:
        raise FiltvizError(f"unknown unit {unit!r}; valid: {', '.join(UNITS)}")
    obj = _one(Term(unit, _layer(layer), tuple(int(f) for f in filters), tokens=_tokens(tokens, unit)))
    if diversity_group is not None and diversity_group > 1 and diversity_weight:
        obj = obj - float(diversity_weight) * _one(Term("diversity", layer, group=int(diversity_group)))
    return obj


UNITS = ("channel", "neuron")


def check_objective(objective: Any) -> Objective:
    if not isinstance(objective, Objective):
        raise FiltvizError(
            f"objective must be built from filtviz objectives (channel, neuron, direction, "
            f"diversity and their sums), got {type(objective).__name__}"
        )
    return objective


def gram_similarity(acts: np.ndarray, group: int | None = None) -> np.ndarray:
    """The numpy reference of the diversity term, float64: ``acts`` (B, positions, C) -> (B,) values.

    ``group``: couple only runs of that many consecutive elements (default: the whole batch)."""
    a = np.asarray(acts, np.float64)
    b = a.shape[0]
    k = b if group is None else int(group)
    grams = np.einsum("bpc,bpd->bcd", a, a).reshape(b, -1)
    grams = grams / np.sqrt(np.maximum((grams * grams).sum(1, keepdims=True), GRAM_EPS))
    out = np.zeros(b)
    for start in range(0, b, k):
        g = grams[start : start + k]
        sim = g @ g.T
        out[start : start + k] = (sim.sum(1) - np.diag(sim)) / k
    return out


# visualize_filters' diversity=K: the penalty's weight unless the caller gives one. Chosen by
# measurement (python -m filtviz_bench.diversity_weight; benchmarks/diversity/, SPEC.md §16.4).
DIVERSITY_WEIGHT = 700.0

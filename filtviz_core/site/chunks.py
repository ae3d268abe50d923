"""Fixed-size chunks of (layer, filters): the unit of work, of resumption and of distribution.

A chunk is a block of ``chunk_size`` consecutive filter indices of one layer, aligned on
multiples of ``chunk_size`` (filters 0-15, 16-31, ...), holding only the wanted filters that are
not done yet. Its ``key`` names its manifest part, so any process can render any chunk and write
its part without talking to the others; losing a process loses only its chunk in flight.

A chunk is always computed as one batch of exactly ``chunk_size`` images (:func:`pad_filters`):
a batch's size decides how the convolution kernels round, so a fixed shape makes a filter's
picture the same, bit for bit, whatever other filters share its chunk, run or rank.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from filtviz_core.errors import FiltvizError


@dataclass(frozen=True)
class Chunk:
    """Filters of one layer rendered together: ``kind`` is a method name ("pixel") or "examples"."""

    layer: str
    kind: str
    filters: tuple[int, ...]

    @property
    def key(self) -> str:
        """Stable name of the chunk's manifest part: ``layer/kind/first-last``."""
        return f"{self.layer}/{self.kind}/{self.filters[0]:04d}-{self.filters[-1]:04d}"

    def __len__(self) -> int:
        return len(self.filters)


def plan_chunks(
    wanted: Iterable[tuple[str, Sequence[int]]],
    kind: str,
    chunk_size: int,
    is_done: Callable[[str, int], bool] = lambda layer, f: False,
) -> list[Chunk]:
    """The chunks that render every wanted filter not yet done, layer by layer, in filter order."""
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise FiltvizError(f"chunk size must be a whole number >= 1, got {chunk_size}")
    chunks: list[Chunk] = []
    for layer, filters in wanted:
        blocks: dict[int, list[int]] = {}
        for f in sorted({int(f) for f in filters}):
            if not is_done(layer, f):
                blocks.setdefault(f // chunk_size, []).append(f)
        chunks.extend(Chunk(layer, kind, tuple(block)) for _, block in sorted(blocks.items()))
    return chunks


def pad_filters(filters: Sequence[int], size: int) -> list[int]:
    """``filters`` filled up to ``size`` with copies of the first one (dummies whose results are
    dropped), so every batch has the same shape. A list already that long is returned as it is."""
    filters = [int(f) for f in filters]
    if not filters:
        raise FiltvizError("a chunk needs at least one filter")
    return filters + [filters[0]] * max(0, int(size) - len(filters))


def assign_chunks(costs: Sequence[float], ranks: int) -> list[list[int]]:
    """Split work items of estimated ``costs`` over ``ranks`` workers: the indices of each one's share.

    Longest first, each to the least loaded worker (ties: the lower rank), which keeps the
    largest share within one item of the ideal; the same inputs always give the same split.
    Each share is returned in the items' own order.
    """
    if int(ranks) != ranks or ranks < 1:
        raise FiltvizError(f"the number of ranks must be a whole number >= 1, got {ranks}")
    shares: list[list[int]] = [[] for _ in range(int(ranks))]
    loads = [(0.0, r) for r in range(int(ranks))]
    for i in sorted(range(len(costs)), key=lambda i: (-float(costs[i]), i)):
        load, r = heapq.heappop(loads)
        shares[r].append(i)
        heapq.heappush(loads, (load + float(costs[i]), r))
    return [sorted(share) for share in shares]


def safe_name(layer: str) -> str:
    """``layer`` as a file name (letters, digits, ``.``, ``_``, ``-``): its page, data and picture folders."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)
    return name if name.strip("._") else "layer"

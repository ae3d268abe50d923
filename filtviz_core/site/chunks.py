"""Fixed-size chunks of (layer, filters): the unit of work, of resumption and of distribution.

A chunk is a block of ``chunk_size`` consecutive filter indices of one layer, aligned on
multiples of ``chunk_size`` (filters 0-15, 16-31, ...), holding only the wanted filters that are
not done yet. Its ``key`` names its manifest part, so any process can render any chunk and write
its part without talking to the others; losing a process loses only its chunk in flight.
"""

from __future__ import annotations

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


def plan_chunks(wanted: Iterable[tuple[str, Sequence[int]]], kind: str, chunk_size: int,
                is_done: Callable[[str, int], bool] = lambda layer, f: False) -> list[Chunk]:
    """The chunks that render every wanted filter not yet done, layer by layer, in filter order."""
    if int(chunk_size) != chunk_size or chunk_size < 1:
        raise FiltvizError(f"chunk size must be a whole number >= 1, got {chunk_size}")
    chunks = []
    for layer, filters in wanted:
        blocks: dict[int, list[int]] = {}
        for f in sorted(set(int(f) for f in filters)):
            if not is_done(layer, f):
                blocks.setdefault(f // chunk_size, []).append(f)
        chunks.extend(Chunk(layer, kind, tuple(block)) for _, block in sorted(blocks.items()))
    return chunks


def safe_name(layer: str) -> str:
    """``layer`` as a file name (letters, digits, ``.``, ``_``, ``-``): its page, data and picture folders."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)
    return name if name.strip("._") else "layer"

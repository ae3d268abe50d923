"""The atlas as a folder: chunks of work, their manifest parts, the merged ``atlas.json``, and the
framework-free static site (plain HTML/CSS/JS, relative links) that shows it.

Nothing here knows how pictures are made: a renderer (``torch_filtviz.atlas``) hands over files
and numbers per chunk; this package records them, decides what is done, and writes the pages.
"""

from filtviz_core.site.chunks import Chunk, plan_chunks
from filtviz_core.site.manifest import AtlasFolder, merge_manifest
from filtviz_core.site.writer import write_site

__all__ = ["AtlasFolder", "Chunk", "merge_manifest", "plan_chunks", "write_site"]

"""``python -m torch_filtviz``: the same as the ``filtviz`` command."""

from torch_filtviz.cli import main

raise SystemExit(main())

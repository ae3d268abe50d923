"""Each contender behind one calling convention (:class:`filtviz_bench.timing.Method`): TensorFlow's
reference, torch_filtviz (any method, precision, memory format, batch) and Lucent.

``run(filters, steps=None)`` computes the job's filters from the job's seeded starting images (methods
that take a start) and returns ``{layer: losses (F, steps + 1)}`` for the speed benchmark, or the
pictures for the quality benchmark.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from filtviz_bench import lucent_runner
from filtviz_bench.jobs import Job
from filtviz_bench.timing import Method


def visualize(model: torch.nn.Module, layer: str, filters: list[int], *, method: str = "pixel", **kwargs: Any):
    """torch_filtviz.visualize_filters without its progress bar."""
    from torch_filtviz import visualize_filters

    return visualize_filters(model, layer, filters, method=method, progress=False, **kwargs)


def torch_method(
    name: str, job: Job, model: torch.nn.Module, device: torch.device, batch_size: int | None = None
) -> Method:
    """torch_filtviz's pixel method on the job's starting images. ``name``: ``torch_one`` (batch 1),
    ``torch_fp32``/``torch_bf16`` with ``_nchw``/``_cl`` forcing a memory format."""
    precision = "bf16" if "bf16" in name else "fp32"
    # None = the library's default for the device (channels_last on CPU); the suffixes force one format.
    channels_last = True if name.endswith("_cl") else False if name.endswith("_nchw") else None
    one = name == "torch_one"

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        out = {}
        for layer, chosen in filters.items():
            r = visualize(
                model,
                layer,
                chosen,
                steps=job.steps if steps is None else steps,
                lr=job.lr,
                init=job.init_for(layer, chosen),
                snapshots=None,
                device=device,
                precision=precision,
                channels_last=channels_last,
                batch_size=1 if one else batch_size,
            )
            out[layer] = r.losses
        return out

    layout = {True: "channels_last", False: "NCHW", None: "default format"}[channels_last]
    notes = "batch 1" if one else f"precision={precision}, {layout}"
    return Method(name, run, one, "torch", notes)


def tf_method(name: str, job: Job, tf_model: Any) -> Method:
    """tf_reference one filter at a time: eager (``tf_eager``) or a traced ``tf.function`` step (``tf_compiled``)."""
    from tf_reference import ascent as tf_ascent

    compiled = name == "tf_compiled"

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        out = {}
        for layer, chosen in filters.items():
            rs = tf_ascent.visualize_filters(
                tf_model,
                layer,
                chosen,
                steps=job.steps if steps is None else steps,
                lr=job.lr,
                init=job.init_for(layer, chosen),
                snapshots=None,
                compiled=compiled,
            )
            out[layer] = np.stack([r.losses for r in rs])
        return out

    return Method(name, run, True, "tensorflow", f"tf_reference.visualize_filters(compiled={compiled})")


def lucent_pixel_method(job: Job, model: torch.nn.Module, device: torch.device) -> Method:
    """Lucent's own loop (``render_vis``) on the same model and pixel start, batched like ours: the
    speed benchmark's Lucent.

    What differs from ours, on purpose kept as Lucent does it: Adam (lr = our lr, in pixel units)
    instead of the RMS-normalised step; the whole network runs forward (hooks on every module, no
    early stop); the objective is Lucent's ``channel`` (mean over the whole map, one term per batch
    element). ``fixed_image_size=size`` keeps its auto-upsampling to 224 px off (an identity resize).
    The model is torch_filtviz's VGG16 (out-of-place ReLUs), so Lucent's hook sees the pre-activation.
    """
    from torch_filtviz.hooks import capture, resolve_target
    from torch_filtviz.objectives import interior_mean

    def run(filters: dict[str, list[int]], steps: int | None = None) -> dict[str, np.ndarray]:
        n_steps = job.steps if steps is None else steps
        out = {}
        for layer, chosen in filters.items():
            x0 = torch.from_numpy(job.init_for(layer, chosen)).permute(0, 3, 1, 2).contiguous().to(device)
            got = lucent_runner.render(
                model,
                layer,
                chosen,
                steps=n_steps,
                size=job.size,
                lr=job.lr,
                init=x0,
                transforms="none",
                upsample=False,
                seed=job.seed,
                device=device,
            )
            # Our objective at x0 and at Lucent's last image, outside what Lucent itself computes.
            target = resolve_target(model, layer, "pre_relu")
            index = torch.tensor(chosen, device=device)
            rows = torch.arange(len(chosen), device=device)
            with torch.no_grad(), capture(model, target) as cap:
                first = interior_mean(cap(x0)[target.name], index, rows, target.channel_dim)
                last = interior_mean(cap(got.final)[target.name], index, rows, target.channel_dim)
            losses = np.full((len(chosen), n_steps + 1), np.nan)
            losses[:, 0] = first.double().cpu().numpy()
            losses[:, -1] = last.double().cpu().numpy()
            out[layer] = losses
        return out

    return Method(
        "lucent",
        run,
        False,
        "torch+lucent",
        "render_vis, Adam(lr), whole network forward, channel objective over the whole map",
    )

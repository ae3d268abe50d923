"""How strongly should feature accentuation tie the picture to the photo? A sweep of ``strength``.

For each photo, layer and strength, ``torch_filtviz.accentuate`` (genuine Keras VGG16 weights, the fourier
method at its defaults unless told) runs the same filters, and this records per filter:

* ``gain``: the filter's objective (SPEC §5, pre-ReLU interior mean, no transforms) on the final picture
  minus that on the photo, and ``gain_share``: that gain over the gain at strength 0 (how much of the
  plain method's excitation the tether keeps);
* ``rms``: the root mean squared difference between the final picture and the photo, in [0, 1] units
  (how far the picture left the photo; 0.1 is about 25 levels of 255).

The default strength (``filtviz_core.accentuate.DEFAULT_STRENGTH``) is the rule's choice printed at the end:
the largest strength of the sweep whose median gain share, over every photo, layer and filter, is at least
``--keep`` (0.5: half of the plain method's excitation kept while staying as near the photo as possible).

    python scripts/accentuate_strength.py                    # the measurement behind the default
    python scripts/accentuate_strength.py --size 96 --filters 0-3 --photos grace_hopper,chelsea --out /tmp/acc

Writes OUT/accentuate_strength.json (after every run); ``--table JSON ...`` prints docs/accentuate.md's table
of one or more such records.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

import torch_filtviz as fv
from filtviz_core import accentuate as core
from filtviz_core import algorithm as alg
from filtviz_core import atomic
from filtviz_core.photos import default_photos


def objective_of(model, layer: str, filters: list[int], pictures: np.ndarray) -> np.ndarray:
    """The filters' objective (SPEC §5) on their own pictures (F, H, W, 3), float64."""
    x = torch.from_numpy(np.ascontiguousarray(pictures)).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return fv.filter_objective(model, layer, filters, x).double().numpy()


def summarize(rows: list[dict], strengths: list[float], keep: float) -> tuple[list[dict], float | None]:
    """Per strength: the median and minimum gain share, the median and largest rms; and the rule's choice."""
    summary = []
    for s in strengths:
        done = [r for r in rows if r["strength"] == s]
        if not done:
            continue
        shares = np.concatenate([r["gain_share"] for r in done])
        rmss = np.concatenate([r["rms"] for r in done])
        summary.append(
            {
                "strength": s,
                "runs": len(done),
                "gain_share_median": float(np.nanmedian(shares)),
                "gain_share_min": float(np.nanmin(shares)),
                "rms_median": float(np.median(rmss)),
                "rms_max": float(np.max(rmss)),
            }
        )
    kept = [e["strength"] for e in summary if e["gain_share_median"] >= keep]
    return summary, (max(kept) if kept else None)


def table(paths: list[str]) -> str:
    """The markdown table of docs/accentuate.md from one or more records: per strength and layer, the median gain
    share and rms over the filters, and over every run."""
    rows = [r for path in paths for r in json.loads(Path(path).read_text())["runs"]]
    strengths = sorted({r["strength"] for r in rows})
    layers = sorted({r["layer"] for r in rows})
    lines = [
        "| strength | " + " | ".join(f"{name}: gain share, rms" for name in layers) + " | all: gain share | all: rms |",
        "|---:|" + "---|" * len(layers) + "---:|---:|",
    ]
    for s in strengths:
        cells, shares, dists = [], [], []
        for name in layers:
            done = [r for r in rows if r["strength"] == s and r["layer"] == name]
            if not done:
                cells.append("-")
                continue
            share = np.concatenate([r["gain_share"] for r in done])
            dist = np.concatenate([r["rms"] for r in done])
            shares.append(share)
            dists.append(dist)
            cells.append(f"{np.nanmedian(share):.2f}, {np.median(dist):.3f}")
        every = f"{np.nanmedian(np.concatenate(shares)):.2f} | {np.median(np.concatenate(dists)):.3f}"
        lines.append(f"| {s:g} | " + " | ".join(cells) + f" | {every} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", default="grace_hopper", help="default photos by name; default: %(default)s")
    p.add_argument("--layers", default="block3_conv1,block4_conv1,block5_conv1")
    p.add_argument("--filters", default="0-1")
    p.add_argument("--strengths", default="0,10000,100000,1000000")
    p.add_argument("--method", default="fourier")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=None, help="default: the method's")
    p.add_argument("--keep", type=float, default=0.5, help="gain share the chosen strength keeps; default: 0.5")
    p.add_argument("--out", default="benchmarks/accentuate")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print the markdown table of these records and stop")
    a = p.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = fv.load_vgg16("keras")
    wanted = a.photos.split(",")
    photos = [ph for ph in default_photos() if ph.name in wanted]
    strengths = [float(s) for s in a.strengths.split(",")]
    rows: list[dict] = []
    started = time.perf_counter()
    out = Path(a.out)

    def write(done: list[dict]) -> None:
        """The record so far (after every run, so an interrupted sweep keeps what it measured)."""
        summary, chosen = summarize(done, strengths, a.keep)
        record = {
            "command": "python scripts/accentuate_strength.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "method": a.method,
            "size": a.size,
            "steps": a.steps,
            "keep": a.keep,
            "rule": "the largest strength whose median gain share is >= keep",
            "chosen_strength": chosen,
            "default_strength": core.DEFAULT_STRENGTH,
            "summary": summary,
            "runs": done,
            "seconds": time.perf_counter() - started,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        atomic.write_bytes(out / "accentuate_strength.json", (json.dumps(record, indent=1) + "\n").encode())

    for photo in photos:
        picture = core.load_photo(photo.path, a.size)
        for layer in a.layers.split(","):
            filters = alg.parse_filters(a.filters, 1 << 20, layer)
            base = objective_of(model, layer, filters, np.repeat(picture[None], len(filters), axis=0))
            plain_gain = None
            for s in strengths:
                t0 = time.perf_counter()
                res = fv.accentuate(
                    model, layer, filters, photo.path, method=a.method, strength=s, steps=a.steps, size=a.size,
                    snapshots=(), progress=False,
                )  # fmt: skip
                gain = objective_of(model, layer, filters, res.raw) - base
                if plain_gain is None:
                    plain_gain = gain
                diff = ((res.raw.astype(np.float64) - picture) / 255.0).reshape(len(filters), -1)
                rms = np.sqrt((diff**2).mean(axis=1))
                share = gain / np.where(np.abs(plain_gain) > 0, plain_gain, np.nan)
                rows.append(
                    {
                        "photo": photo.name,
                        "layer": layer,
                        "strength": s,
                        "filters": filters,
                        "gain": gain.tolist(),
                        "gain_share": share.tolist(),
                        "rms": rms.tolist(),
                        "seconds": time.perf_counter() - t0,
                    }
                )
                print(
                    f"{photo.name:<13} {layer:<13} strength {s:>8g}: gain share median "
                    f"{np.nanmedian(share):6.3f}, rms median {np.median(rms):.4f} ({time.perf_counter() - t0:.0f} s)",
                    flush=True,
                )
                write(rows)
    summary, chosen = summarize(rows, strengths, a.keep)
    print("strength   gain share (median, min)   rms to photo (median, max)")
    for e in summary:
        print(
            f"{e['strength']:>8g}   {e['gain_share_median']:6.3f} {e['gain_share_min']:7.3f}"
            f"               {e['rms_median']:.4f} {e['rms_max']:.4f}"
        )
    print(f"chosen strength (rule: largest with median gain share >= {a.keep}): {chosen}")
    print(f"wrote {out / 'accentuate_strength.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Measure what a whole-network atlas costs: time per layer, site size, and the largest page's load time.

Renders ``--per-layer`` filters of every conv layer (one chunk each) with ``filtviz atlas --html``'s
own code, then extrapolates to all filters (4,224 for VGG16) from the measured time and bytes per
filter of each layer, and times the page of a 512-filter layer (made-up pictures of the same size,
written by the real site code) in headless Chromium. The CPU load average is recorded before and
after, because a shared machine slows the rendering. Writes one JSON report.

    python scripts/atlas_measure.py --per-layer 8 --size 64 --steps 100 --out benchmarks/cpu/atlas_measure.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def folder_bytes(root: Path, prefix: str = "") -> int:
    return sum(
        p.stat().st_size for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix().startswith(prefix)
    )


def measure_render(args) -> dict:
    import torch

    import torch_filtviz as fv
    from torch_filtviz.atlas import build_atlas

    model = fv.load_vgg16(args.weights)
    site = Path(args.site or tempfile.mkdtemp(prefix="atlas-measure-")) / "site"
    load_before = os.getloadavg()
    started = time.perf_counter()
    build_atlas(
        model,
        site,
        per_layer=args.per_layer,
        chunk_size=args.per_layer,
        progress=False,
        params=dict(steps=args.steps, size=args.size, progress=False),
        command="scripts/atlas_measure.py",
    )
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    doc = json.loads((site / "atlas.json").read_text())
    layers, total_seconds, total_bytes, total_filters = [], 0.0, 0, 0
    for layer in doc["layers"]:
        units = layer["units"]
        seconds = sum(u["methods"]["pixel"]["seconds"] for u in units)
        files = [f for u in units for f in u["methods"]["pixel"]["bytes"].items()]
        files += [(x["file"], (site / x["file"]).stat().st_size) for u in units for x in u["examples"]]
        per_filter_bytes = sum(size for _, size in files) / len(units)
        per_filter_seconds = seconds / len(units)
        layers.append(
            {
                "layer": layer["name"],
                "filters": layer["filters"],
                "measured_filters": len(units),
                "seconds_per_filter": round(per_filter_seconds, 3),
                "layer_seconds_extrapolated": round(per_filter_seconds * layer["filters"], 1),
                "bytes_per_filter": round(per_filter_bytes),
            }
        )
        total_seconds += per_filter_seconds * layer["filters"]
        total_bytes += per_filter_bytes * layer["filters"]
        total_filters += layer["filters"]
    measured = sum(len(layer["units"]) for layer in doc["layers"])
    manifest_per_filter = (site / "atlas.json").stat().st_size / measured
    data_per_filter = folder_bytes(site, "data/") / measured
    fixed = (
        folder_bytes(site, "assets/")
        + folder_bytes(site, "photos/")
        + sum(p.stat().st_size for p in site.glob("*.html"))
    )
    site_total = total_bytes + (manifest_per_filter + data_per_filter) * total_filters + fixed
    return {
        "measured_filters": measured,
        "measured_wall_seconds": round(wall, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "torch_threads": torch.get_num_threads(),
        "layers": layers,
        "all_filters": total_filters,
        "all_hours_extrapolated": round(total_seconds / 3600, 2),
        "site_bytes_extrapolated": round(site_total),
        "site_mib_extrapolated": round(site_total / 2**20, 1),
        "files_bytes_per_filter_mean": round(total_bytes / total_filters),
        "manifest_and_data_bytes_per_filter": round(manifest_per_filter + data_per_filter),
        "measured_site_bytes": folder_bytes(site),
        "site": str(site),
    }


def flop_estimate(args, measured: dict | None) -> dict:
    """The full atlas's time from its conv FLOPs and the fp32 throughput the speed benchmark (``make bench``)
    measured on a quiet machine (``--bench``): a shared machine's wall times overstate the cost several times."""
    import torch_filtviz as fv
    from filtviz_bench.flops import conv_flops
    from filtviz_core import vgg16 as spec

    bench = json.loads(Path(args.bench).read_text())
    method = bench["methods"]["torch_fp32"]
    tflops = float(method["tflops"])
    model = fv.load_vgg16("random")
    layers, total = [], 0.0
    for name, count in spec.FILTER_COUNTS.items():
        flops = count * (2 * args.steps + 1) * conv_flops(model, name, args.size)
        seconds = flops / (tflops * 1e12)
        total += seconds
        layers.append({"layer": name, "pflop": round(flops / 1e15, 4), "seconds": round(seconds, 1)})
    found = {
        "throughput_tflops": round(tflops, 4),
        "bench": args.bench,
        "bench_job": bench["job"]["name"],
        "bench_load_average": bench.get("load_average"),
        "layers": layers,
        "all_pflop": round(sum(layer["pflop"] for layer in layers), 3),
        "all_hours": round(total / 3600, 2),
    }
    if measured:  # how much slower the shared machine was, on the same FLOPs
        done = {layer["layer"]: layer for layer in measured["layers"]}
        found["measured_over_estimate"] = {
            layer["layer"]: round(
                done[layer["layer"]]["seconds_per_filter"]
                * spec.FILTER_COUNTS[layer["layer"]]
                / max(layer["seconds"], 1e-9),
                1,
            )
            for layer in layers
            if layer["layer"] in done
        }
    return found


def measure_page(args) -> dict:
    from filtviz_core.site import browser as B
    from filtviz_core.site.dummy import write_dummy_atlas

    reason = B.unavailable()
    if reason:
        return {"skipped": reason}
    site = Path(tempfile.mkdtemp(prefix="atlas-page-")) / "site"
    write_dummy_atlas(site, filters=512, size=args.size, examples=6)
    page = site / "block5_conv3.html"
    with B.chromium() as browser:
        timing = B.page_load_timing(browser, page.resolve().as_uri(), runs=args.page_runs)
        view = B.page_load_timing(browser, page.resolve().as_uri() + "#300", runs=args.page_runs)
    return {
        "layer_page": {"filters": 512, **timing},
        "filter_view": view,
        "page_bytes": {"html": page.stat().st_size, "data_js": (site / "data" / "block5_conv3.js").stat().st_size},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-layer", type=int, default=8, help="filters measured per layer; default: %(default)s")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--weights", default="keras")
    parser.add_argument("--site", default=None, help="folder for the measured site (default: a temporary one)")
    parser.add_argument("--page-runs", type=int, default=5)
    parser.add_argument("--skip-render", action="store_true", help="no rendering (keep the report's render section)")
    parser.add_argument("--skip-page", action="store_true", help="no page-load timing (keep the report's)")
    parser.add_argument(
        "--bench",
        default="benchmarks/cpu/bench.json",
        help="quiet-machine benchmark whose fp32 throughput converts FLOPs to time",
    )
    parser.add_argument("--out", default=None, help="write the JSON report here (default: print it)")
    args = parser.parse_args()
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "settings": {"per_layer": args.per_layer, "size": args.size, "steps": args.steps, "weights": args.weights},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    previous = json.loads(Path(args.out).read_text()) if args.out and Path(args.out).is_file() else {}
    report["render"] = previous.get("render") if args.skip_render else measure_render(args)
    report["flop_estimate"] = flop_estimate(args, report["render"])
    report["page_load"] = previous.get("page_load") if args.skip_page else measure_page(args)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

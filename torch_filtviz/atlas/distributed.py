"""The atlas on many GPUs and machines: one process per rank, started by ``torchrun``.

``torchrun --nproc_per_node=N [--nnodes=M --rdzv-endpoint=HOST:PORT] -m torch_filtviz atlas --html OUT``
runs this driver in every process (a *rank*); without torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) ``filtviz atlas`` runs in one process as before. The ranks:

1. join ``torch.distributed`` (nccl on ``cuda:LOCAL_RANK`` where CUDA is, gloo on the CPU
   elsewhere) and load the model; rank 0 opens OUT, checks every layer and size, plans the chunks
   still to do and splits them across the ranks by estimated cost (:mod:`torch_filtviz.atlas.cost`); ONE collective
   then hands the plan to every rank, and tells every rank whether any of them failed so far;
2. render their shares, each on its own device, writing files and manifest parts atomically
   (each entry records its rank, host and seconds), adding their counts to torchrun's key-value
   store, from which rank 0 draws the one progress bar of the job;
3. say in the store that they are done; rank 0 then merges the manifest and writes the site.

After step 1 the ranks talk only through the store (:mod:`torch_filtviz.atlas.team`): a rank that records an error,
or stops beating its heartbeat for ``--dist-timeout`` seconds, ends the job with one line on
rank 0 that names it; never a hang. A rank that dies makes torchrun stop the others (SIGTERM):
rank 0 then writes the site of what is done. Every finished chunk is on disk, so the same command
run again renders only what is missing. Several machines must see the same OUT (a shared file
system): checked before any work.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from filtviz_core.cli_common import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE, first_line
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from filtviz_core.site.chunks import Chunk, assign_chunks
from filtviz_core.site.manifest import EXAMPLES
from torch_filtviz.atlas.options import check_site_folder, print_report, site_arguments, site_params
from torch_filtviz.atlas.team import (
    DEFAULT_TIMEOUT,
    Failure,
    Launch,
    Stopped,
    Team,
    error_message,
    error_status,
    exit_status,
    is_usage,
    launched,
    on_sigterm,
    rank_device,
    secondary_rank,
)

PUBLISH_EVERY = 10.0  # s: rank 0 refreshes the site this often while the ranks work
PROG = "filtviz"
STOPPED = (
    "stopped by SIGTERM (torchrun stops every rank once one has exited: its report names it); every finished "
    "chunk is kept: run the same command again to render the rest"
)

__all__ = ["DEFAULT_TIMEOUT", "Launch", "launched", "run_site", "secondary_rank"]


def _site_inputs(args: argparse.Namespace, ascent_kwargs: Callable, device) -> tuple[dict, Any, list | None, bool]:
    """(params, OUT, photos, progress wanted) from the options, as ``filtviz atlas --html`` reads them."""
    from filtviz_core.photos import folder_photos

    params, progress = site_params(args, ascent_kwargs)
    params["device"] = str(device)
    out = check_site_folder(args.html)
    photos = None
    if args.examples and args.photos:
        photos = folder_photos(args.photos, warn=lambda line: print(f"{PROG}: {line}", file=sys.stderr))
    return params, out, photos, progress


def _shares(job, costs: Mapping[str, float], ranks: int) -> list[list[Chunk]]:
    """Each rank's chunks: picture chunks split by cost (a chunk always computes ``chunk_size``
    images), each followed by the dataset examples of the same filters; examples whose pictures
    are done already go to the ranks with the fewest chunks."""
    pictures = job.picture_chunks
    k = max(1, int((job.run.get("views") or {}).get("diversity") or 1))
    split = assign_chunks(
        [costs[c.layer] * job.chunk_size * (k if c.kind.endswith(".diversity") else 1) for c in pictures], ranks
    )
    owner = {
        (pictures[i].layer, pictures[i].filters[0] // job.chunk_size): r for r, share in enumerate(split) for i in share
    }
    shares: list[list[Chunk]] = [[pictures[i] for i in share] for share in split]
    extra: list[Chunk] = []
    for chunk in job.example_chunks:
        r = owner.get((chunk.layer, chunk.filters[0] // job.chunk_size))
        if r is None:
            extra.append(chunk)
        else:
            shares[r].append(chunk)
    for chunk in extra:
        min(shares, key=len).append(chunk)
    from torch_filtviz.atlas.build import interleave

    return [
        interleave([c for c in share if c.kind != EXAMPLES], [c for c in share if c.kind == EXAMPLES])
        for share in shares
    ]


def run_site(args: argparse.Namespace, load_model: Callable, ascent_kwargs: Callable, launch: Launch) -> int:
    """``filtviz atlas --html OUT`` as one rank of a torchrun job; returns the exit status."""
    timeout = float(getattr(args, "dist_timeout", DEFAULT_TIMEOUT))
    if timeout <= 0:
        raise FiltvizError(f"--dist-timeout must be a number of seconds > 0, got {timeout:g}")
    team = None
    try:  # until the ranks have met, each rank says its own errors (rank 0 cannot know them)
        device = rank_device(args.device, launch.local_rank)
        args.device = str(device)
        team = Team(launch, device, timeout)
        team.join()
    except (FiltvizError, FiltvizRuntimeError) as exc:
        if launch.rank == 0 or is_usage(exc):  # a usage error is every rank's: rank 0 says it
            raise
        print(f"{PROG}: error: rank {launch.rank}: {exc}", file=sys.stderr)
        return exit_status(exc)
    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return (_lead if launch.rank == 0 else _follow)(team, args, load_model, ascent_kwargs)
    except Stopped:
        if launch.rank == 0:
            raise FiltvizRuntimeError(STOPPED) from None
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
        team.close()


def _lead(team: Team, args, load_model: Callable, ascent_kwargs: Callable) -> int:
    """Rank 0: plan and split, render a share, watch the others, publish the site."""
    from torch_filtviz.atlas.build import (
        AtlasReport,
        _now,
        default_writers,
        load_photo_set,
        plan,
        prepare,
        publish,
        record_upstream,
        run_chunks,
    )
    from torch_filtviz.atlas.cost import image_costs

    started = time.perf_counter()
    job, shares, error, progress = None, None, None, False
    try:
        arguments = site_arguments(args)
        params, out, photos, progress = _site_inputs(args, ascent_kwargs, team.device)
        model = load_model(args)
        job = prepare(
            model,
            out,
            **arguments,
            params=params,
            photos=photos,
            command=_command(getattr(args, "argv", None)),
            ranks=team.size,
        )
        job.worker.rank = 0
        plan(job)
        costs = image_costs(
            model, [name for name, _ in job.wanted], int(params.get("size", 128)), params.get("objective")
        )
        shares = _shares(job, costs, team.size)
        if job.example_chunks:
            load_photo_set(job)
        job.run["world_size"] = team.size
        record_upstream(job)
        publish(job)  # the site shows what is done, and the run record proves the folder is shared
    except Exception as exc:  # noqa: BLE001 - every rank learns of it in the collective, then it is raised
        error = exc
    me = {
        "rank": 0,
        "host": team.host,
        "device": str(team.device),
        "error": error_status(error),
        "job": None
        if error or job is None
        else {
            "run": job.run,
            "wanted": job.wanted,
            "chunk_size": job.chunk_size,
            "method": job.method.name,
            "examples": job.examples_settings(),
            "shares": shares,
        },
    }
    team.members = statuses = team.gather(me)
    if error is not None:
        raise error
    assert job is not None and shares is not None  # both set whenever there was no error
    failed = next((s for s in statuses if s["error"]), None)
    if failed is not None:
        job.run["status"], job.run["finished"] = "failed", _now()
        publish(job)
        raise Failure(failed["rank"], failed["host"], failed["error"]["message"], failed["error"]["usage"]).error()

    todo = sum(len(c) for share in shares for c in share if c.kind != EXAMPLES)
    total = sum(len(f) for _, f in job.wanted)
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=todo, desc=f"atlas ({team.size} ranks)", unit="filter")
    team.start(job.run["id"], bar)
    last = [time.monotonic()]

    def refresh() -> None:  # the site shows every rank's finished chunks, at most every PUBLISH_EVERY seconds
        if time.monotonic() - last[0] > PUBLISH_EVERY:
            publish(job)
            last[0] = time.monotonic()

    def after(chunk: Chunk) -> None:
        if chunk.kind != EXAMPLES:
            team.done(len(chunk))
        if team.failure is not None:
            raise team.failure.error()
        refresh()

    status, mine = "failed", time.perf_counter()
    try:
        team.rendering(True)
        try:
            run_chunks(job, shares[0], after=after, writers=default_writers(str(team.device), team.local_size))
            mine = time.perf_counter() - mine
            team.wait_for_others(refresh)
        finally:
            team.rendering(False)
        status = "done"
    except KeyboardInterrupt:
        if team.failure is None:
            status = "interrupted"
            raise
        raise team.failure.error() from None
    except Stopped:
        status = "stopped"
        raise FiltvizRuntimeError(STOPPED) from None
    finally:
        try:
            team.stop_watching()
            if bar is not None:
                bar.close()
            ranks = [
                {
                    "rank": 0,
                    "host": team.host,
                    "device": str(team.device),
                    "rendered": job.run["rendered"],
                    "views": job.run.get("views_rendered", 0),
                    "examples": job.run["examples_written"],
                    "seconds": round(mine, 2) if status == "done" else None,
                }
            ]
            for r in sorted(team.finished):
                ranks.append({"rank": r, **team.finished[r]})
                job.run["rendered"] += int(team.finished[r].get("rendered", 0))
                job.run["views_rendered"] = job.run.get("views_rendered", 0) + int(team.finished[r].get("views", 0))
                job.run["examples_written"] += int(team.finished[r].get("examples", 0))
            job.run["ranks"] = ranks
            job.run["status"], job.run["finished"] = status, _now()
            index = publish(job)  # the site of everything every rank finished
        finally:
            team.abort()  # after an error: the others stop after their chunk in flight
    report = AtlasReport(
        job.out,
        index,
        job.run["rendered"],
        total - sum(len(c) for share in shares for c in share if c.kind == job.method.name),
        job.run["examples_written"],
        time.perf_counter() - started,
        job.photo_set.passes if job.photo_set else 0,
        ranks,
    )
    print_report(report)
    return 0


def _follow(team: Team, args, load_model: Callable, ascent_kwargs: Callable) -> int:
    """A rank other than 0: its share, its heartbeat, its errors to rank 0. Prints nothing unless
    rank 0 cannot report for it."""
    from filtviz_core.site.manifest import AtlasFolder
    from torch_filtviz.atlas.build import AtlasPlan, default_writers, run_chunks
    from torch_filtviz.atlas.methods import get_method
    from torch_filtviz.atlas.render import Worker

    error = model = None
    try:
        params, out, photos, _ = _site_inputs(args, ascent_kwargs, team.device)
        model = load_model(args)
    except Exception as exc:  # noqa: BLE001 - rank 0 reports it after the collective
        error = exc
    device_name = None
    if team.device.type == "cuda":
        import torch

        device_name = torch.cuda.get_device_name(team.device)
    team.members = statuses = team.gather(
        {
            "rank": team.rank,
            "host": team.host,
            "device": str(team.device),
            "device_name": device_name,
            "error": error_status(error),
            "job": None,
        }
    )
    failed = next((s for s in statuses if s["error"]), None)
    if failed is not None:
        return EXIT_USAGE if failed["error"]["usage"] else EXIT_RUNTIME
    assert model is not None  # loaded whenever there was no error
    plan = statuses[0]["job"]
    run = plan["run"]
    job = AtlasPlan(
        AtlasFolder(out),
        model,
        get_method(plan["method"]),
        params,
        plan["wanted"],
        plan["chunk_size"],
        dict(run),
        Worker(rank=team.rank, host=team.host, run=run["id"]),
        photos=[],
        examples=args.examples,
        photo_size=args.photo_size,
    )
    share = plan["shares"][team.rank]
    team.start(run["id"])
    started = time.perf_counter()

    def after(chunk: Chunk) -> None:
        if chunk.kind != EXAMPLES:
            team.done(len(chunk))
        if team.lost is not None:
            raise FiltvizRuntimeError(f"lost torchrun's store at {team.launch.master}: {first_line(team.lost)}")
        if team.stopping():
            raise Stopped()

    try:
        _check_shared(job, run["id"])
        if any(c.kind == EXAMPLES for c in share):
            from filtviz_core.photos import default_photos

            job.photos = list(photos) if photos is not None else default_photos()
            if job.examples_settings() != plan["examples"]:
                raise FiltvizRuntimeError(
                    f"the photos here differ from rank 0's ({len(job.photos)} vs "
                    f"{plan['examples']['photos']['count']}, or other files): every machine "
                    "needs the same --photos"
                )
        run_chunks(job, share, after=after, writers=default_writers(str(team.device), team.local_size))
        team.finish(
            {
                "host": team.host,
                "device": str(team.device),
                "device_name": device_name,
                "rendered": job.run["rendered"],
                "views": job.run.get("views_rendered", 0),
                "examples": job.run["examples_written"],
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        return 0
    except (KeyboardInterrupt, Stopped):
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - to rank 0, or said here when rank 0 cannot
        if team.stopping():
            return EXIT_RUNTIME  # rank 0 ended the job (and said why)
        if not team.report(exc):
            print(f"{PROG}: error: rank {team.rank} on {team.host}: {error_message(exc)}", file=sys.stderr)
        return exit_status(exc)


def _command(argv) -> str:
    """The command that made the site, as the user would type it again (torchrun's own rendezvous
    options, which this process cannot see, elided)."""
    import os
    import shlex

    local, nodes = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), int(os.environ.get("GROUP_WORLD_SIZE", "1"))
    launcher = f"torchrun --nproc_per_node={local}" + (f" --nnodes={nodes} ..." if nodes > 1 else "")
    return f"{launcher} -m torch_filtviz {shlex.join(map(str, sys.argv[1:] if argv is None else argv))}"


def _check_shared(job, run_id: str, wait: float = 10.0) -> None:
    """Every rank must see rank 0's folder: its run record is there before any rank renders."""
    record = job.out / "runs" / f"{run_id}.json"
    deadline = time.monotonic() + wait
    while not record.is_file():
        if time.monotonic() > deadline:
            raise FiltvizRuntimeError(
                f"{job.out} here does not hold the run record rank 0 wrote ({record.name}): "
                "every machine must see the same --html folder (a shared file system)"
            )
        time.sleep(0.2)

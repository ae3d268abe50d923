"""The atlas on many GPUs and machines: one process per rank, started by ``torchrun``.

``torchrun --nproc_per_node=N [--nnodes=M --rdzv-endpoint=HOST:PORT] -m torch_filtviz atlas --html OUT``
runs this driver in every process (a *rank*); without torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) ``filtviz atlas`` runs in one process as before. The ranks:

1. join ``torch.distributed`` (nccl on ``cuda:LOCAL_RANK`` where CUDA is, gloo on the CPU
   elsewhere) and load the model; rank 0 opens OUT, checks every layer and size, plans the chunks
   still to do and splits them across the ranks by estimated cost (:mod:`.cost`); ONE collective
   then hands the plan to every rank, and tells every rank whether any of them failed so far;
2. render their shares, each on its own device, writing files and manifest parts atomically
   (each entry records its rank, host and seconds), adding their counts to torchrun's key-value
   store, from which rank 0 draws the one progress bar of the job;
3. say in the store that they are done; rank 0 then merges the manifest and writes the site.

Why the store and not collectives after step 1: shares take unequal times (hours on CPUs), and a
collective would have to wait that long with its timeout. Instead every rank beats a heartbeat
in the store, and rank 0 watches: a rank that records an error, or stops beating for
``--dist-timeout`` seconds, ends the job with one line on rank 0 that names it; never a hang. A
rank that dies makes torchrun stop the others (SIGTERM): rank 0 then writes the site of what is
done. Every finished chunk is on disk, so the same command run again renders only what is missing.
Several machines must see the same OUT (a shared file system): checked before any work.
"""

from __future__ import annotations

import _thread
import argparse
import contextlib
import datetime as _dt
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from filtviz_core.cli_common import EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE, first_line
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from filtviz_core.site.chunks import Chunk, assign_chunks
from filtviz_core.site.manifest import EXAMPLES

DEFAULT_TIMEOUT = 300.0  # s: the longest wait for another rank (joining, the plan, a silent rank)
HEARTBEAT = 1.0  # s between a rank's heartbeats
POLL = 0.2  # s between rank 0's looks at the store
GRACE = 1.0  # s a failed rank waits, once rank 0 has its error, before exiting (torchrun then stops all)
PUBLISH_EVERY = 10.0  # s: rank 0 refreshes the site this often while the ranks work
PROG = "filtviz"


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun job, from the environment torchrun sets."""

    rank: int
    world_size: int
    local_rank: int
    master: str  # MASTER_ADDR:MASTER_PORT, the rendezvous (for messages)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Launch | None:
        """The launch described by ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (default 0), or None
        when ``RANK`` or ``WORLD_SIZE`` is not set (not started by torchrun)."""
        env = os.environ if environ is None else environ
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return None
        try:
            rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
        except ValueError:
            raise FiltvizError(f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}, LOCAL_RANK="
                               f"{env.get('LOCAL_RANK')!r}: torchrun sets whole numbers") from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise FiltvizError(f"RANK={rank} and WORLD_SIZE={world}: a rank runs from 0 to WORLD_SIZE - 1 "
                               "(start the command with torchrun, or unset RANK and WORLD_SIZE)")
        return cls(rank, world, local, f"{env.get('MASTER_ADDR', '?')}:{env.get('MASTER_PORT', '?')}")


def launched() -> Launch | None:
    """The torchrun launch of this process, or None."""
    return Launch.from_env()


def secondary_rank() -> bool:
    """Whether this process is a torchrun rank other than 0, whose errors rank 0 reports."""
    try:
        found = Launch.from_env()
    except FiltvizError:
        return False
    return found is not None and found.rank != 0


def rank_device(requested: str | None, local_rank: int):
    """The device of a rank: ``cuda:LOCAL_RANK`` for auto/cuda where CUDA is, else what auto picks
    (MPS or the CPU), or the CPU when asked; one line for a device that cannot be this rank's."""
    import torch

    from torch_filtviz.models import resolve_device

    text = "auto" if requested in (None, "", "auto") else str(requested)
    if text in ("auto", "cuda") and torch.cuda.is_available() or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise FiltvizRuntimeError(f"device {text!r} asked for, but no CUDA GPU is available here; use --device cpu")
        count = torch.cuda.device_count()
        if text.startswith("cuda:") and resolve_device(text).index != local_rank:
            raise FiltvizError(f"--device {text}: under torchrun each rank uses cuda:LOCAL_RANK (this one "
                               f"cuda:{local_rank}); give --device cuda or auto")
        if local_rank >= count:
            raise FiltvizRuntimeError(f"LOCAL_RANK {local_rank}, but this machine has {count} CUDA device"
                                      f"{'s' * (count != 1)}: start at most {count} per machine "
                                      f"(torchrun --nproc_per_node={count})")
        return torch.device("cuda", local_rank)
    return resolve_device(text)


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold what native code writes on stderr (file descriptor 2) for the duration: on success it
    is written out as it was; on failure it is dropped, because c10d's retries print C++ stack
    frames there and the one line that replaces them says what went wrong."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        ok = False
        try:
            yield
            ok = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if ok:
                held.seek(0)
                text = held.read()
                if text:
                    sys.stderr.write(text.decode(errors="replace"))
                    sys.stderr.flush()


class Stopped(BaseException):
    """SIGTERM arrived (torchrun stops every rank once one has exited). A BaseException, so that no
    ``except Exception`` on the way swallows it."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - a signal handler's signature
    raise Stopped()


@dataclass
class Failure:
    """Another rank's failure, as rank 0 reports it."""

    rank: int
    host: str
    message: str
    usage: bool = False

    def line(self) -> str:
        return f"rank {self.rank} on {self.host} failed: {self.message}"

    def error(self) -> Exception:
        return (FiltvizError if self.usage else FiltvizRuntimeError)(self.line())


@dataclass
class Team:
    """The ranks of one job, seen from this one: the process group, torchrun's key-value store,
    heartbeats, the shared progress count and the failures."""

    launch: Launch
    device: Any
    timeout: float = DEFAULT_TIMEOUT
    host: str = field(default_factory=socket.gethostname)
    members: list[dict] = field(default_factory=list)  # per rank: rank, host, device (from the plan's collective)
    finished: dict[int, dict] = field(default_factory=dict)  # rank 0: the other ranks' final counts
    failure: Failure | None = None  # rank 0: another rank's failure, found by the watcher
    lost: BaseException | None = None  # the store stopped answering this rank's heartbeats
    _prefix: str = ""
    _store: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _rendering: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rank(self) -> int:
        return self.launch.rank

    @property
    def size(self) -> int:
        return self.launch.world_size

    # --- joining and the one collective ----------------------------------------------------------

    def join(self) -> None:
        """``init_process_group`` with the timeout; one line when the rendezvous does not complete."""
        import torch
        import torch.distributed as dist

        backend = "nccl" if self.device.type == "cuda" else "gloo"
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        try:
            with _native_stderr_held():
                dist.init_process_group(backend, rank=self.rank, world_size=self.size,
                                        timeout=_dt.timedelta(seconds=self.timeout))
        except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError, DistNetworkError, no MASTER_ADDR
            raise FiltvizRuntimeError(
                f"torch.distributed did not start ({backend}, rank {self.rank} of {self.size}, rendezvous "
                f"{self.launch.master}, --dist-timeout {self.timeout:g} s): {first_line(exc)}") from None

    def gather(self, mine: dict) -> list[dict]:
        """Every rank's ``mine``, in rank order (the one collective of the job)."""
        import torch.distributed as dist

        found: list[Any] = [None] * self.size
        try:
            dist.all_gather_object(found, mine)
        except (RuntimeError, ValueError) as exc:
            raise FiltvizRuntimeError(f"rank {self.rank}: the ranks did not meet within --dist-timeout "
                                      f"{self.timeout:g} s: {first_line(exc)}") from None
        return found

    def close(self) -> None:
        import torch.distributed as dist

        self.stop_watching()
        if dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception:  # noqa: BLE001 - leaving anyway
                pass

    # --- the store: progress, heartbeats, failures, the end --------------------------------------

    def _client(self):
        import torch.distributed as dist

        host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500"))
        return dist.TCPStore(host, port, is_master=False, timeout=_dt.timedelta(seconds=self.timeout),
                             wait_for_workers=False)

    def key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def start(self, run_id: str, bar: Any = None) -> None:
        """Open the store for this run and start the heartbeat (and, on rank 0, the watcher)."""
        self._prefix = f"filtviz/{run_id}/"
        self._store = self._client()
        self._spawn(self._beat)
        if self.rank == 0:
            self._spawn(lambda: self._watch(bar))

    def _spawn(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop_watching(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def _beat(self) -> None:
        try:
            store = self._client()
            while not self._stop.is_set():
                store.add(self.key(f"beat/{self.rank}"), 1)
                self._stop.wait(HEARTBEAT)
        except Exception as exc:  # noqa: BLE001 - the main thread reports it after its chunk
            self.lost = exc

    def done(self, count: int) -> None:
        """Add ``count`` rendered filters to the job's progress."""
        self._store.add(self.key("done"), int(count))

    def stopping(self) -> bool:
        """Whether rank 0 has ended the job."""
        return bool(self._store.check([self.key("abort")]))

    def abort(self) -> None:
        """(rank 0) End the job: the other ranks stop after their chunk in flight."""
        try:
            self._store.set(self.key("abort"), "1")
        except Exception:  # noqa: BLE001 - the store may be gone already
            pass

    def finish(self, stats: Mapping[str, Any]) -> None:
        self._store.set(self.key(f"finished/{self.rank}"), json.dumps(dict(stats)))

    def report(self, exc: BaseException) -> bool:
        """(ranks > 0) Record this rank's error for rank 0 and wait until rank 0 has ended the job;
        False if that did not happen (then this rank prints its own line)."""
        try:
            self._store.set(self.key(f"error/{self.rank}"),
                            json.dumps({"host": self.host, "message": _message(exc), "usage": _is_usage(exc)}))
            self._store.wait([self.key("abort")], _dt.timedelta(seconds=self.timeout))
        except Exception:  # noqa: BLE001 - no store, no rank 0: say it here
            return False
        time.sleep(GRACE)  # rank 0 prints its line first; torchrun stops every rank once this one exits
        return True

    def _watch(self, bar: Any) -> None:
        """(rank 0, a thread) Progress, finished ranks, errors and silent ranks, every POLL seconds."""
        try:
            store = self._client()
            others = [r for r in range(self.size) if r != 0]
            beats = {r: (-1, time.monotonic()) for r in others}
            while not self._stop.is_set():
                if bar is not None:
                    bar.n = int(store.add(self.key("done"), 0))
                    bar.refresh()
                for r in others:
                    if r in self.finished:
                        continue
                    if store.check([self.key(f"finished/{r}")]):
                        self.finished[r] = json.loads(store.get(self.key(f"finished/{r}")))
                        continue
                    if store.check([self.key(f"error/{r}")]):
                        found = json.loads(store.get(self.key(f"error/{r}")))
                        return self._fail(Failure(r, found.get("host", "?"), found.get("message", "?"),
                                                  bool(found.get("usage"))))
                    count, since = beats[r]
                    now_count = int(store.add(self.key(f"beat/{r}"), 0))
                    if now_count != count:
                        beats[r] = (now_count, time.monotonic())
                    elif time.monotonic() - since > self.timeout:
                        return self._fail(Failure(r, self.host_of(r), f"no heartbeat for {self.timeout:g} s "
                                                  "(--dist-timeout): the process hangs or its machine is gone"))
                self._stop.wait(POLL)
        except Exception as exc:  # noqa: BLE001 - the store itself is gone
            self._fail(Failure(0, self.host, f"lost torchrun's store at {self.launch.master}: {first_line(exc)}"))

    def _fail(self, failure: Failure) -> None:
        with self._lock:
            self.failure = failure
            if self._rendering:
                _thread.interrupt_main()  # the chunk in flight stops at its next Python step

    def rendering(self, flag: bool) -> None:
        """(rank 0) Whether a failure found by the watcher may interrupt the main thread now."""
        with self._lock:
            self._rendering = flag

    def host_of(self, rank: int) -> str:
        for member in self.members:
            if member.get("rank") == rank:
                return str(member.get("host", "?"))
        return "?"

    def wait_for_others(self) -> None:
        """(rank 0) Until every other rank has finished; raises on a failure the watcher found."""
        while len(self.finished) < self.size - 1:
            if self.failure is not None:
                raise self.failure.error()
            time.sleep(POLL)


# --- the driver --------------------------------------------------------------------------------------


def _site_inputs(args: argparse.Namespace, ascent_kwargs: Callable, device) -> tuple[dict, Any, list | None, bool]:
    """(params, OUT, photos, progress wanted) from the options, as ``filtviz atlas --html`` reads them."""
    from filtviz_core.photos import folder_photos
    from torch_filtviz.atlas.command import check_site_folder, site_params

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
    split = assign_chunks([costs[c.layer] * job.chunk_size for c in pictures], ranks)
    owner = {(pictures[i].layer, pictures[i].filters[0] // job.chunk_size): r for r, share in enumerate(split)
             for i in share}
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

    return [interleave([c for c in share if c.kind != EXAMPLES], [c for c in share if c.kind == EXAMPLES])
            for share in shares]


def _is_usage(exc: BaseException) -> bool:
    return isinstance(exc, FiltvizError) and not isinstance(exc, FiltvizRuntimeError)


def _exit_status(exc: BaseException) -> int:
    return EXIT_USAGE if _is_usage(exc) else EXIT_RUNTIME


def _message(exc: BaseException) -> str:
    """What went wrong, in one line: the message of our own errors, the type too of any other."""
    if isinstance(exc, (FiltvizError, FiltvizRuntimeError)):
        return first_line(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


def _status(exc: BaseException | None) -> dict | None:
    return None if exc is None else {"message": _message(exc), "usage": _is_usage(exc)}


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
        if launch.rank == 0:
            raise
        print(f"{PROG}: error: rank {launch.rank}: {exc}", file=sys.stderr)
        return _exit_status(exc)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return (_lead if launch.rank == 0 else _follow)(team, args, load_model, ascent_kwargs)
    finally:
        signal.signal(signal.SIGTERM, previous)
        team.close()


def _lead(team: Team, args, load_model: Callable, ascent_kwargs: Callable) -> int:
    """Rank 0: plan and split, render a share, watch the others, publish the site."""
    from torch_filtviz.atlas.build import (AtlasReport, _now, command_line, load_photo_set, plan, prepare,
                                           publish, run_chunks)
    from torch_filtviz.atlas.command import parse_per_layer, print_report
    from torch_filtviz.atlas.cost import image_costs

    started = time.perf_counter()
    job, shares, error, progress = None, None, None, False
    try:
        per_layer = parse_per_layer(args.per_layer)
        params, out, photos, progress = _site_inputs(args, ascent_kwargs, team.device)
        from filtviz_core.cli_common import parse_names

        layers = parse_names(args.layers) if args.layers else None
        model = load_model(args)
        job = prepare(model, out, layers=layers, per_layer=per_layer, params=params, photos=photos,
                      examples=args.examples, photo_size=args.photo_size, chunk_size=args.chunk_size,
                      force=args.force, command=command_line(getattr(args, "argv", None)), ranks=team.size)
        job.worker.rank = 0
        plan(job)
        costs = image_costs(model, [name for name, _ in job.wanted], int(params.get("size", 128)),
                            params.get("objective"))
        shares = _shares(job, costs, team.size)
        if job.example_chunks:
            load_photo_set(job)
        job.run["world_size"] = team.size
        publish(job)  # the site shows what is done, and the run record proves the folder is shared
    except Exception as exc:  # noqa: BLE001 - every rank learns of it in the collective, then it is raised
        error = exc
    me = {"rank": 0, "host": team.host, "device": str(team.device), "error": _status(error),
          "job": None if error else {"run": job.run, "wanted": job.wanted, "chunk_size": job.chunk_size,
                                     "method": job.method.name, "examples": job.examples_settings(),
                                     "shares": shares}}
    team.members = statuses = team.gather(me)
    if error is not None:
        raise error
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

    def after(chunk: Chunk) -> None:
        if chunk.kind != EXAMPLES:
            team.done(len(chunk))
        if team.failure is not None:
            raise team.failure.error()
        if time.monotonic() - last[0] > PUBLISH_EVERY:
            publish(job)
            last[0] = time.monotonic()

    status, mine = "failed", time.perf_counter()
    try:
        team.rendering(True)
        try:
            run_chunks(job, shares[0], after=after)
            mine = time.perf_counter() - mine
            team.wait_for_others()
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
        raise FiltvizRuntimeError("stopped by SIGTERM (torchrun stops every rank once one has exited: its report "
                                  "names it); every finished chunk is kept: run the same command again to render "
                                  "the rest") from None
    finally:
        try:
            team.stop_watching()
            if bar is not None:
                bar.close()
            ranks = [{"rank": 0, "host": team.host, "device": str(team.device), "rendered": job.run["rendered"],
                      "examples": job.run["examples_written"], "seconds": round(mine, 2) if status == "done" else None}]
            for r in sorted(team.finished):
                ranks.append({"rank": r, **team.finished[r]})
                job.run["rendered"] += int(team.finished[r].get("rendered", 0))
                job.run["examples_written"] += int(team.finished[r].get("examples", 0))
            job.run["ranks"] = ranks
            job.run["status"], job.run["finished"] = status, _now()
            index = publish(job)  # the site of everything every rank finished
        finally:
            team.abort()  # after an error: the others stop after their chunk in flight
    report = AtlasReport(job.out, index, job.run["rendered"], total - todo, job.run["examples_written"],
                         time.perf_counter() - started, job.photo_set.passes if job.photo_set else 0, ranks)
    print_report(report)
    return 0


def _follow(team: Team, args, load_model: Callable, ascent_kwargs: Callable) -> int:
    """A rank other than 0: its share, its heartbeat, its errors to rank 0. Prints nothing unless
    rank 0 cannot report for it."""
    from filtviz_core.site.manifest import AtlasFolder
    from torch_filtviz.atlas.build import AtlasPlan, run_chunks
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
    team.members = statuses = team.gather({"rank": team.rank, "host": team.host, "device": str(team.device),
                                           "device_name": device_name, "error": _status(error), "job": None})
    failed = next((s for s in statuses if s["error"]), None)
    if failed is not None:
        return EXIT_USAGE if failed["error"]["usage"] else EXIT_RUNTIME
    plan = statuses[0]["job"]
    run = plan["run"]
    job = AtlasPlan(AtlasFolder(out), model, get_method(plan["method"]), params, plan["wanted"], plan["chunk_size"],
                    dict(run), Worker(rank=team.rank, host=team.host, run=run["id"]), photos=[],
                    examples=args.examples, photo_size=args.photo_size)
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
        _check_shared(job, run["id"], team)
        if any(c.kind == EXAMPLES for c in share):
            from filtviz_core.photos import default_photos

            job.photos = list(photos) if photos is not None else default_photos()
            if job.examples_settings() != plan["examples"]:
                raise FiltvizRuntimeError(f"the photos here differ from rank 0's ({len(job.photos)} vs "
                                          f"{len(plan['examples']['photos'])}, or other files): every machine "
                                          "needs the same --photos")
        run_chunks(job, share, after=after)
        team.finish({"host": team.host, "device": str(team.device), "device_name": device_name,
                     "rendered": job.run["rendered"], "examples": job.run["examples_written"],
                     "seconds": round(time.perf_counter() - started, 2)})
        return 0
    except (KeyboardInterrupt, Stopped):
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - to rank 0, or said here when rank 0 cannot
        if team.stopping():
            return EXIT_RUNTIME  # rank 0 ended the job (and said why)
        if not team.report(exc):
            print(f"{PROG}: error: rank {team.rank} on {team.host}: {_message(exc)}", file=sys.stderr)
        return _exit_status(exc)


def _check_shared(job, run_id: str, team: Team, wait: float = 10.0) -> None:
    """Every rank must see rank 0's folder: its run record is there before any rank renders."""
    record = job.out / "runs" / f"{run_id}.json"
    deadline = time.monotonic() + wait
    while not record.is_file():
        if time.monotonic() > deadline:
            raise FiltvizRuntimeError(f"{job.out} here does not hold the run record rank 0 wrote ({record.name}): "
                                      "every machine must see the same --html folder (a shared file system)")
        time.sleep(0.2)


def ranks_summary(ranks: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per rank for the closing report."""
    return [f"  rank {r.get('rank')}       {r.get('rendered', 0)} filters on {r.get('device')} at {r.get('host')}"
            + (f" in {r['seconds']:.1f} s" if r.get("seconds") else "") for r in ranks]

"""The ranks of a torchrun job as one team: who this process is, its device, the process group,
torchrun's key-value store, heartbeats, the shared progress count and failures.

torchrun starts every rank with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous
(``MASTER_ADDR:MASTER_PORT``, where its store listens). :class:`Team` joins the process group
(nccl on ``cuda:LOCAL_RANK``, gloo on the CPU) with a timeout, and then talks through the store:
a collective would have to wait as long as the slowest rank's share, hours on CPUs, with its
timeout; the store lets every rank beat a heartbeat and rank 0 watch them, so a rank that fails
or goes silent ends the job with one line on rank 0, never a hang.
"""

from __future__ import annotations

import _thread
import contextlib
import datetime as _dt
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from filtviz_core.cli_common import EXIT_RUNTIME, EXIT_USAGE, first_line
from filtviz_core.errors import FiltvizError, FiltvizRuntimeError

DEFAULT_TIMEOUT = 300.0  # s: the longest wait for another rank (joining, the plan, a silent rank)
HEARTBEAT = 1.0  # s between a rank's heartbeats
POLL = 0.2  # s between rank 0's looks at the store
GRACE = 1.0  # s a failed rank waits, once rank 0 has its error, before exiting (torchrun then stops all)


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
            raise FiltvizError(
                f"RANK={env.get('RANK')!r}, WORLD_SIZE={env.get('WORLD_SIZE')!r}, LOCAL_RANK="
                f"{env.get('LOCAL_RANK')!r}: torchrun sets whole numbers"
            ) from None
        if world < 1 or not 0 <= rank < world or local < 0:
            raise FiltvizError(
                f"RANK={rank} and WORLD_SIZE={world}: a rank runs from 0 to WORLD_SIZE - 1 "
                "(start the command with torchrun, or unset RANK and WORLD_SIZE)"
            )
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
    if (text in ("auto", "cuda") and torch.cuda.is_available()) or text.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise FiltvizRuntimeError(f"device {text!r} asked for, but no CUDA GPU is available here; use --device cpu")
        count = torch.cuda.device_count()
        if text.startswith("cuda:") and resolve_device(text).index != local_rank:
            raise FiltvizError(
                f"--device {text}: under torchrun each rank uses cuda:LOCAL_RANK (this one "
                f"cuda:{local_rank}); give --device cuda or auto"
            )
        if local_rank >= count:
            raise FiltvizRuntimeError(
                f"LOCAL_RANK {local_rank}, but this machine has {count} CUDA device"
                f"{'s' * (count != 1)}: start at most {count} per machine "
                f"(torchrun --nproc_per_node={count})"
            )
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


def on_sigterm(signum, frame):  # a signal handler's signature
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

    @property
    def local_size(self) -> int:
        """Ranks on this machine (torchrun's LOCAL_WORLD_SIZE)."""
        return int(os.environ.get("LOCAL_WORLD_SIZE", "1"))

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
                dist.init_process_group(
                    backend, rank=self.rank, world_size=self.size, timeout=_dt.timedelta(seconds=self.timeout)
                )
        except (RuntimeError, ValueError, OSError) as exc:  # DistStoreError, DistNetworkError, no MASTER_ADDR
            raise FiltvizRuntimeError(
                f"torch.distributed did not start ({backend}, rank {self.rank} of {self.size}, rendezvous "
                f"{self.launch.master}, --dist-timeout {self.timeout:g} s): {first_line(exc)}"
            ) from None

    def gather(self, mine: dict) -> list[dict]:
        """Every rank's ``mine``, in rank order (the one collective of the job)."""
        import torch.distributed as dist

        found: list[Any] = [None] * self.size
        try:
            dist.all_gather_object(found, mine)
        except (RuntimeError, ValueError) as exc:
            raise FiltvizRuntimeError(
                f"rank {self.rank}: the ranks did not meet within --dist-timeout {self.timeout:g} s: {first_line(exc)}"
            ) from None
        return found

    def close(self) -> None:
        import torch.distributed as dist

        self.stop_watching()
        if dist.is_initialized():
            with contextlib.suppress(Exception):  # leaving anyway
                dist.destroy_process_group()

    # --- the store: progress, heartbeats, failures, the end --------------------------------------

    def _client(self):
        import torch.distributed as dist

        host, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), int(os.environ.get("MASTER_PORT", "29500"))
        return dist.TCPStore(
            host, port, is_master=False, timeout=_dt.timedelta(seconds=self.timeout), wait_for_workers=False
        )

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
        with contextlib.suppress(Exception):  # the store may be gone already
            self._store.set(self.key("abort"), "1")

    def finish(self, stats: Mapping[str, Any]) -> None:
        self._store.set(self.key(f"finished/{self.rank}"), json.dumps(dict(stats)))

    def report(self, exc: BaseException) -> bool:
        """(ranks > 0) Record this rank's error for rank 0 and wait until rank 0 has ended the job;
        False if that did not happen (then this rank prints its own line)."""
        try:
            self._store.set(
                self.key(f"error/{self.rank}"),
                json.dumps({"host": self.host, "message": error_message(exc), "usage": is_usage(exc)}),
            )
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
                        return self._fail(
                            Failure(r, found.get("host", "?"), found.get("message", "?"), bool(found.get("usage")))
                        )
                    count, since = beats[r]
                    now_count = int(store.add(self.key(f"beat/{r}"), 0))
                    if now_count != count:
                        beats[r] = (now_count, time.monotonic())
                    elif time.monotonic() - since > self.timeout:
                        return self._fail(
                            Failure(
                                r,
                                self.host_of(r),
                                f"no heartbeat for {self.timeout:g} s "
                                "(--dist-timeout): the process hangs or its machine is gone",
                            )
                        )
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

    def wait_for_others(self, tick: Callable[[], None] | None = None) -> None:
        """(rank 0) Until every other rank has finished, calling ``tick()`` meanwhile; raises on a
        failure the watcher found."""
        while len(self.finished) < self.size - 1:
            if self.failure is not None:
                raise self.failure.error()
            if tick is not None:
                tick()
            time.sleep(POLL)


def is_usage(exc: BaseException) -> bool:
    """A usage error (exit status 2), not a failure while running."""
    return isinstance(exc, FiltvizError) and not isinstance(exc, FiltvizRuntimeError)


def exit_status(exc: BaseException) -> int:
    """The exit status the command line gives ``exc``."""
    return EXIT_USAGE if is_usage(exc) else EXIT_RUNTIME


def error_message(exc: BaseException) -> str:
    """What went wrong, in one line: the message of our own errors, the type too of any other."""
    if isinstance(exc, (FiltvizError, FiltvizRuntimeError)):
        return first_line(exc)
    return f"{type(exc).__name__}: {first_line(exc)}"


def error_status(exc: BaseException | None) -> dict | None:
    """What a rank tells the others about its preparation: None (fine) or its error."""
    return None if exc is None else {"message": error_message(exc), "usage": is_usage(exc)}

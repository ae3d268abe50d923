"""The atlas on several processes, started for real by torchrun (gloo on this CPU): the 2-rank site
equals the one-process site bit for bit, a killed rank loses only its chunk in flight and the rerun
renders only the rest, and every bad setup ends with one line (never a hang). Also the pieces the
driver stands on: fixed-shape chunks, the split by cost, the launch environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from filtviz_core.errors import FiltvizError, FiltvizRuntimeError
from filtviz_core.site.chunks import assign_chunks, pad_filters
from torch_filtviz.atlas.distributed import Launch
from torch_filtviz.cli import main

ROOT = Path(__file__).resolve().parents[1]
# VGG16 (random weights), three layers, six filters each: small enough for 2 cores.
SITE = [
    "atlas",
    "--layers",
    "block1_conv1,block2_conv1,block3_conv1",
    "--per-layer",
    "6",
    "--chunk-size",
    "2",
    "--size",
    "32",
    "--steps",
    "12",
    "--weights",
    "random",
    "--examples",
    "1",
    "--photo-size",
    "48",
    "--no-progress",
    "--dist-timeout",
    "60",
]
# A small net (tests/atlas_nets.py) that starts fast, with 12 chunks that take long enough to kill a rank mid-run.
SMALL = [
    "atlas",
    "--model",
    "tests.atlas_nets:small",
    "--per-layer",
    "8",
    "--chunk-size",
    "2",
    "--size",
    "64",
    "--steps",
    "30",
    "--examples",
    "1",
    "--photo-size",
    "48",
    "--no-progress",
    "--dist-timeout",
    "60",
]
TOTAL = 18
PER_RUN = {"seconds", "rank", "host", "run", "device", "chunk"}  # may differ between two runs of the same filter
TORCHRUN_NOISE = ("*****", "Setting OMP_NUM_THREADS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env(**extra: str) -> dict[str, str]:
    """The test's environment without any torchrun variables of its own, one thread per process."""
    found = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
    }
    found.update(OMP_NUM_THREADS="1", FILTVIZ_OFFLINE="1", **extra)
    return found


def torchrun(*argv: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(free_port()),
        "-m",
        "torch_filtviz",
        *argv,
    ]


def run(cmd: list[str], timeout: float = 240, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=env(**extra), capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("filtviz: error:")]


def units(folder: Path) -> dict[tuple, dict]:
    """Every filter's entry (and dataset examples) in the merged manifest, keyed by layer, filter, kind."""
    doc = json.loads((folder / "atlas.json").read_text())
    found = {}
    for layer in doc["layers"]:
        for unit in layer["units"]:
            for method, entry in unit["methods"].items():
                found[(layer["name"], unit["filter"], method)] = entry
            found[(layer["name"], unit["filter"], "examples")] = {"examples": unit["examples"]}
    return found


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for top in ("pictures", "examples")
        for p in (folder / top).rglob("*")
        if p.is_file()
    }


def assert_same_site(got: Path, want: Path, filters: int) -> None:
    """Same filters, same losses, same pictures and crops, byte for byte; only who/when may differ."""
    a, b = units(got), units(want)
    assert sorted(a) == sorted(b) and len(b) == 2 * filters  # pictures and examples
    for key in b:
        assert {k: v for k, v in a[key].items() if k not in PER_RUN} == {
            k: v for k, v in b[key].items() if k not in PER_RUN
        }, key
    fa, fb = files(got), files(want)
    assert sorted(fa) == sorted(fb) and len(fb) == 5 * filters  # picture, thumbnail, snapshot, top and bottom crop
    assert [name for name in fb if fa[name] != fb[name]] == []


def one_process(argv: list[str], out: Path) -> Path:
    """The reference: the same atlas from plain ``filtviz atlas`` in this process, on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([argv[0], "--html", str(out), *argv[1:]]) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def test_two_ranks_make_the_one_process_site_bitwise(tmp_path, random_vgg, monkeypatch):
    out = tmp_path / "site"
    done = run(torchrun(*SITE[:1], "--html", str(out), *SITE[1:]))
    assert done.returncode == 0, done.stderr
    assert f"atlas: {TOTAL} filters rendered, 0 already done" in done.stdout and "on 2 ranks" in done.stdout
    import torch_filtviz.models as models

    monkeypatch.setattr(models, "load_vgg16", lambda *a, **k: random_vgg)  # the same seeded weights, loaded once
    assert_same_site(out, one_process(SITE, tmp_path / "one"), TOTAL)
    entries = [e for key, e in units(out).items() if key[2] == "pixel"]
    assert {e["rank"] for e in entries} == {0, 1}  # both ranks rendered a share
    assert all(
        e["host"] == socket.gethostname() and e["seconds"] > 0 and e["params"]["batch_size"] == 2 for e in entries
    )
    run_record = json.loads((out / "atlas.json").read_text())["runs"][-1]
    assert run_record["status"] == "done" and run_record["world_size"] == 2
    assert run_record["command"].startswith("torchrun --nproc_per_node=2 -m torch_filtviz atlas --html ")
    assert sorted(r["rank"] for r in run_record["ranks"]) == [0, 1]
    assert sum(r["rendered"] for r in run_record["ranks"]) == TOTAL == run_record["rendered"]


def rank_pid(launcher: subprocess.Popen, rank: int) -> int | None:
    """The pid of torchrun's worker with RANK=``rank`` (Linux /proc)."""
    children = Path(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read_text().split()
    for pid in children:
        try:
            if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    return None


def parts_by_rank(out: Path) -> dict[str, int]:
    """Each recorded picture chunk (its part file) and the rank that rendered it."""
    found = {}
    for path in (out / "parts").rglob("pixel/*.json") if (out / "parts").is_dir() else []:
        try:
            entries = json.loads(path.read_text())["entries"]
        except (OSError, ValueError):
            continue
        found[path.relative_to(out).as_posix()] = next(iter(entries.values()))["rank"]
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds torchrun's workers through Linux /proc")
def test_a_killed_rank_loses_only_its_chunk_in_flight_and_the_rerun_renders_the_rest(tmp_path):
    out, total = tmp_path / "site", 3 * 8
    cmd = torchrun(*SMALL[:1], "--html", str(out), *SMALL[1:])
    launcher = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env(FILTVIZ_TEST_PACE_RANK_1="0.02"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # rank 1: >= 0.6 s per chunk, never done too soon
    deadline = time.monotonic() + 180
    while launcher.poll() is None and 1 not in parts_by_rank(out).values() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert launcher.poll() is None, "the job ended before a rank could be killed"
    os.kill(rank_pid(launcher, 1), signal.SIGKILL)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    lines = error_lines(err)
    assert len(lines) == 1 and "stopped by SIGTERM" in lines[0] and "run the same command again" in lines[0], err
    doc = json.loads((out / "atlas.json").read_text())
    assert doc["runs"][-1]["status"] == "stopped"  # rank 0 wrote the site of what was done
    kept = {key: e for key, e in units(out).items() if key[2] == "pixel"}
    assert 0 < len(kept) < total
    before = {p: (out / p).stat().st_mtime_ns for p in parts_by_rank(out)}

    again = run(cmd)  # the same command
    assert again.returncode == 0, again.stderr
    assert f"atlas: {total - len(kept)} filters rendered, {len(kept)} already done" in again.stdout
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before  # nothing done twice
    final = units(out)
    assert all(final[key]["run"] == entry["run"] for key, entry in kept.items())
    # killed, resumed, and bitwise the site of one uninterrupted process
    assert_same_site(out, one_process(SMALL, tmp_path / "one"), total)


TINY = [
    "atlas",
    "--model",
    "tests.atlas_nets:fails_on_rank_1",
    "--chunk-size",
    "2",
    "--size",
    "32",
    "--steps",
    "3",
    "--examples",
    "0",
    "--no-progress",
    "--dist-timeout",
    "30",
]


@pytest.fixture(scope="module")
def bad_setups(tmp_path_factory) -> dict[str, tuple]:
    """Four jobs that must each end with one line, started at once (most of their time is waiting):
    a rank that fails, more ranks than filters, and two ranks whose rendezvous never completes (a
    rank 1 whose rank 0 is not there, a rank 0 whose rank 1 never comes)."""
    root = tmp_path_factory.mktemp("bad")
    direct = [sys.executable, "-m", "torch_filtviz", *TINY, "--per-layer", "4", "--dist-timeout", "2"]
    rendezvous = dict(WORLD_SIZE="2", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1")
    jobs = {
        "failing rank": (torchrun(*TINY, "--html", str(root / "failing"), "--per-layer", "4"), {}),
        "more ranks": (torchrun(*TINY, "--html", str(root / "more"), "--layers", "features.0", "--per-layer", "1"), {}),
        "no rank 0": (
            [*direct, "--html", str(root / "rank1")],
            dict(rendezvous, RANK="1", MASTER_PORT=str(free_port())),
        ),
        "no rank 1": (
            [*direct, "--html", str(root / "rank0")],
            dict(rendezvous, RANK="0", MASTER_PORT=str(free_port())),
        ),
    }
    started = time.monotonic()
    procs = {
        name: subprocess.Popen(
            cmd, cwd=ROOT, env=env(**extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, (cmd, extra) in jobs.items()
    }
    found = {name: (proc.returncode, *proc.communicate(timeout=180)) for name, proc in procs.items()}
    found = {name: (procs[name].returncode, out, err) for name, (_, out, err) in found.items()}
    found["seconds"] = time.monotonic() - started
    found["root"] = root
    return found


def test_a_failing_rank_ends_the_job_with_one_line_naming_it(bad_setups):
    code, _, err = bad_setups["failing rank"]
    assert code != 0
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"filtviz: error: rank 1 on {socket.gethostname()} failed: RuntimeError: injected failure on rank 1"
    )
    run_record = json.loads((bad_setups["root"] / "failing" / "atlas.json").read_text())["runs"][-1]
    assert run_record["status"] == "failed"


def test_more_ranks_than_filters_is_refused_before_any_work(bad_setups):
    code, _, err = bad_setups["more ranks"]
    assert code != 0
    assert error_lines(err) == [
        (
            "filtviz: error: 2 ranks for 1 filter: start at most 1 process "
            "(torchrun --nproc_per_node, --nnodes), or ask for more filters "
            "(--per-layer, --layers)"
        )
    ]
    assert not (bad_setups["root"] / "more").exists()


def test_an_unreachable_rendezvous_ends_with_one_line_after_the_timeout(bad_setups):
    assert bad_setups["seconds"] < 120  # never a hang: --dist-timeout 2 (and 30 for the torchrun jobs)
    for name, rank in (("no rank 1", 0), ("no rank 0", 1)):
        code, _, err = bad_setups[name]
        assert code == 1
        assert err.strip().count("\n") == 0, err  # one line, none of c10d's C++ retry logs
        assert err.startswith(
            f"filtviz: error: {'rank 1: ' if rank else ''}torch.distributed did not start (gloo, "
            f"rank {rank} of 2, rendezvous 127.0.0.1:"
        )
        assert not (bad_setups["root"] / f"rank{rank}").exists()
    assert "1/2 clients joined" in bad_setups["no rank 1"][2]


def test_only_the_website_is_split_across_ranks(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["filters", "block1_conv1", "--weights", "random", "--out", str(tmp_path / "f")]) == 2
    assert "only 'filtviz atlas --html OUT' splits its work" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "1")  # the same error on another rank: rank 0 says it, this one is silent
    assert main(["filters", "block1_conv1", "--weights", "random", "--out", str(tmp_path / "f")]) == 2
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "f").exists()


def test_launch_environment():
    assert Launch.from_env({}) is None and Launch.from_env({"RANK": "0"}) is None
    found = Launch.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "h", "MASTER_PORT": "9"})
    assert found == Launch(rank=3, world_size=4, local_rank=1, master="h:9")
    for bad in ({"RANK": "4", "WORLD_SIZE": "4"}, {"RANK": "x", "WORLD_SIZE": "4"}, {"RANK": "0", "WORLD_SIZE": "0"}):
        with pytest.raises(FiltvizError):
            Launch.from_env(bad)


def test_chunks_are_padded_to_a_fixed_shape_and_split_by_cost():
    assert pad_filters([5, 7], 4) == [5, 7, 5, 5] and pad_filters([1, 2, 3], 2) == [1, 2, 3]
    with pytest.raises(FiltvizError):
        pad_filters([], 4)
    costs = [8.0, 1.0, 1.0, 1.0, 1.0, 4.0, 4.0]
    shares = assign_chunks(costs, 2)
    assert sorted(i for share in shares for i in share) == list(range(7))  # every chunk once
    loads = sorted(sum(costs[i] for i in share) for share in shares)
    assert loads == [10.0, 10.0]  # the expensive chunks do not pile up on one rank
    assert assign_chunks(costs, 2) == shares and all(share == sorted(share) for share in shares)
    assert assign_chunks([1.0], 3) == [[0], [], []]


def test_layer_costs_are_the_conv_flops_up_to_the_layer(random_vgg):
    from filtviz_core import vgg16 as spec
    from torch_filtviz.atlas.cost import image_costs, layer_costs

    model = random_vgg
    size, channels, side, expected, running = 128, 3, 128, {}, 0
    for name in spec.CONV_NAMES:  # VGG16's arithmetic: 3x3 convs, 'same' padding, a pool before each block
        if name.endswith("conv1") and name != "block1_conv1":
            side //= 2
        out = spec.FILTER_COUNTS[name]
        running += 2 * channels * 9 * out * side * side
        expected[name], channels = running, out
    flops = layer_costs(model, list(spec.CONV_NAMES), size)
    assert flops == expected
    assert 7.9 < flops["block5_conv3"] / flops["block1_conv2"] < 8.0  # the figure in torch_filtviz.atlas.cost
    assert 176 < flops["block5_conv3"] / flops["block1_conv1"] < 178
    layers = ["block1_conv1", "block3_conv1", "block5_conv3"]
    costs = image_costs(model, layers, size)
    assert costs == {name: flops[name] + 0.1 * flops["block5_conv3"] for name in layers}


def test_a_chunk_of_one_filter_and_a_resumed_filter_match_the_full_chunk_bitwise(tmp_path, random_vgg):
    """Every chunk runs as one batch of --chunk-size images (a short one padded with copies of its
    first filter): on this CPU a batch of 1 rounds differently from a batch of 4 (see
    scripts/batching_check.py), so without the padding filter 0 alone, or filter 2 redone alone,
    would not reproduce the full chunk's picture."""
    from torch_filtviz.atlas import build_atlas

    model = random_vgg
    kw = dict(
        layers=["block1_conv2"],
        chunk_size=4,
        examples=0,
        progress=False,
        params=dict(steps=3, size=32, progress=False, device="cpu"),
    )
    alone = build_atlas(model, tmp_path / "alone", per_layer=1, **kw)
    full = build_atlas(model, tmp_path / "full", per_layer=4, **kw)
    assert (alone.rendered, full.rendered) == (1, 4)
    a, b = units(tmp_path / "alone"), units(tmp_path / "full")
    assert a[("block1_conv2", 0, "pixel")]["losses"] == b[("block1_conv2", 0, "pixel")]["losses"]
    assert a[("block1_conv2", 0, "pixel")]["params"]["batch_size"] == 4
    picture = "pictures/block1_conv2/pixel/0002.png"
    assert (
        files(tmp_path / "alone")["pictures/block1_conv2/pixel/0000.png"]
        == files(tmp_path / "full")["pictures/block1_conv2/pixel/0000.png"]
    )
    before, losses = (tmp_path / "full" / picture).read_bytes(), b[("block1_conv2", 2, "pixel")]["losses"]
    (tmp_path / "full" / picture).unlink()
    again = build_atlas(model, tmp_path / "full", per_layer=4, **kw)
    assert again.rendered == 1 and (tmp_path / "full" / picture).read_bytes() == before
    assert units(tmp_path / "full")[("block1_conv2", 2, "pixel")]["losses"] == losses


def test_writer_threads_make_the_same_site_and_record_every_rendered_chunk(tmp_path, monkeypatch):
    """On a GPU, threads write a chunk's files while the next one renders: same files, same
    manifest, and a render that fails still leaves every chunk rendered before it recorded."""
    import atlas_nets

    import torch_filtviz.atlas.build as build
    from torch_filtviz.atlas.methods import METHODS, Method
    from torch_filtviz.models import wrap_model

    model = wrap_model(atlas_nets.small(), preprocess="none")
    kw = dict(per_layer=6, chunk_size=2, examples=0, progress=False, params=dict(steps=3, size=16, progress=False))
    build.build_atlas(model, tmp_path / "inline", **kw)
    monkeypatch.setattr(build, "default_writers", lambda device, processes=1: 3)
    build.build_atlas(model, tmp_path / "threads", **kw)
    a, b = units(tmp_path / "threads"), units(tmp_path / "inline")
    assert sorted(a) == sorted(b) and len(b) == 2 * 18
    assert all(
        {k: v for k, v in a[key].items() if k not in PER_RUN} == {k: v for k, v in b[key].items() if k not in PER_RUN}
        for key in b
    )
    assert files(tmp_path / "threads") == files(tmp_path / "inline")

    real, calls = METHODS["pixel"], []

    def fail_on_fifth_chunk(model, layer, filters, params):
        calls.append(layer)
        if len(calls) == 5:
            raise RuntimeError("device lost")
        return real.render(model, layer, filters, params)

    monkeypatch.setitem(METHODS, "pixel", Method("pixel", real.settings_keys, fail_on_fifth_chunk))
    with pytest.raises(RuntimeError, match="device lost"):
        build.build_atlas(model, tmp_path / "failed", **kw)
    assert len([key for key in units(tmp_path / "failed") if key[2] == "pixel"]) == 8  # the 4 chunks before


class FakeStore:
    """torchrun's key-value store, in memory (what rank 0's watcher reads)."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}

    def add(self, key: str, amount: int) -> int:
        self.data[key] = int(self.data.get(key, 0)) + amount
        return self.data[key]

    def set(self, key: str, value: str) -> None:
        self.data[key] = value.encode()

    def get(self, key: str) -> bytes:
        return self.data[key]

    def check(self, keys) -> bool:
        return all(k in self.data for k in keys)


@pytest.mark.parametrize("case", ["silent", "error", "finished"])
def test_rank_0_names_a_silent_or_failed_rank_and_counts_finished_ones(case, monkeypatch):
    from torch_filtviz.atlas import team as team_mod

    store = FakeStore()
    team = team_mod.Team(Launch(rank=0, world_size=3, local_rank=0, master="h:1"), torch.device("cpu"), timeout=0.6)
    team.members = [{"rank": r, "host": f"node{r}"} for r in range(3)]
    monkeypatch.setattr(team_mod.Team, "_client", lambda self: store)
    monkeypatch.setattr(team_mod, "POLL", 0.05)
    team.start("run1")
    try:
        store.set(team.key("finished/1"), json.dumps({"rendered": 4}))
        if case == "error":
            store.set(
                team.key("error/2"),
                json.dumps({"host": "node2", "message": "CUDA error: an illegal memory access", "usage": False}),
            )
        elif case == "finished":
            store.set(team.key("finished/2"), json.dumps({"rendered": 5}))
        deadline = time.monotonic() + 10
        while team.failure is None and len(team.finished) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        if case == "finished":
            team.wait_for_others()
            assert team.failure is None and team.finished == {1: {"rendered": 4}, 2: {"rendered": 5}}
            assert store.data[team.key("beat/0")] >= 1  # rank 0's own heartbeat
            return
        with pytest.raises(FiltvizRuntimeError) as found:
            team.wait_for_others()
        expected = (
            "rank 2 on node2 failed: no heartbeat for 0.6 s (--dist-timeout)"
            if case == "silent"
            else "rank 2 on node2 failed: CUDA error: an illegal memory access"
        )
        assert str(found.value).startswith(expected)
        assert team.finished == {1: {"rendered": 4}}
    finally:
        team.stop_watching()


def test_a_machine_that_does_not_see_rank_0s_folder_is_refused(tmp_path):
    from types import SimpleNamespace

    from torch_filtviz.atlas.distributed import _check_shared

    job = SimpleNamespace(out=tmp_path)
    with pytest.raises(FiltvizRuntimeError, match="every machine must see the same --html folder"):
        _check_shared(job, "run1", wait=0.2)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "run1.json").write_text("{}")
    _check_shared(job, "run1", wait=0.2)

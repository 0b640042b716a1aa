"""How much of the machine a timed phase had. A time taken while other processes kept the cores
busy is not a speed figure: each training stage and each evaluation records the process's CPU time
against its wall time, and the CPU time the rest of the machine used meanwhile (``/proc/stat``); a
phase during which other processes left it less than ``QUIET_SHARE`` of the cores it asked for is
marked busy, and the reports compare no seconds of it."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

QUIET_SHARE = 0.9  # a phase that could use less than this share of its cores is busy
PROBE_S = 0.25  # how long the start-of-run look at the machine's load lasts


@dataclass(frozen=True)
class Snapshot:
    wall: float  # perf_counter seconds
    own: float  # this process's CPU seconds, every thread
    machine: float | None  # CPU seconds every process used, None where /proc/stat is not there


def snapshot() -> Snapshot:
    times = os.times()
    return Snapshot(time.perf_counter(), times.user + times.system, _machine_busy_seconds())


def _machine_busy_seconds() -> float | None:
    """Seconds of CPU time every process on the machine has used since boot (all but idle and iowait)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use(start: Snapshot, end: Snapshot, threads: int) -> dict:
    """The phase between two snapshots: its wall and CPU seconds, the share of its ``threads`` it
    kept busy (``share``), the cores other processes used meanwhile (``others``), and ``busy``:
    whether the others left it less than ``QUIET_SHARE`` of its cores (None where unknown)."""
    wall, own = end.wall - start.wall, end.own - start.own
    wanted = max(1, min(threads, cpus()))
    out = {"wall_s": round(wall, 3), "cpu_s": round(own, 3), "threads": wanted,
           "share": round(own / (wall * wanted), 3) if wall > 0 else None, "others": None, "busy": None}
    if wall > 0 and start.machine is not None and end.machine is not None:
        others = max(0.0, (end.machine - start.machine) - own) / wall  # cores' worth, averaged
        out["others"] = round(others, 3)
        out["busy"] = cpus() - others < QUIET_SHARE * wanted
    return out


def joined(before: dict | None, after: dict) -> dict:
    """One phase's ``use`` from its parts (a stage interrupted and resumed): seconds add up, the
    others' load is averaged over wall time, and the phase is busy if any part was (unknown if a
    part was unknown and none was busy)."""
    if not before:
        return after
    wall, cpu = before["wall_s"] + after["wall_s"], before["cpu_s"] + after["cpu_s"]
    threads = after["threads"]
    out = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "threads": threads,
           "share": round(cpu / (wall * threads), 3) if wall > 0 else None, "others": None, "busy": None}
    parts = (before, after)
    if wall > 0 and all(part.get("others") is not None for part in parts):
        out["others"] = round(sum(part["others"] * part["wall_s"] for part in parts) / wall, 3)
    flags = [part.get("busy") for part in parts]
    out["busy"] = True if True in flags else (None if None in flags else False)
    return out


class Meter:
    """``with Meter(threads) as meter: ...`` then ``meter.result``: the phase's ``use``;
    ``meter.so_far()`` is its use up to now, while it runs."""

    def __init__(self, threads: int | None = None):
        import torch

        self.threads = threads or torch.get_num_threads()
        self.result: dict | None = None

    def __enter__(self) -> "Meter":
        self.start = snapshot()
        return self

    def __exit__(self, *exc) -> None:
        self.result = use(self.start, snapshot(), self.threads)

    def so_far(self) -> dict:
        return use(self.start, snapshot(), self.threads)


def latency_ms(call, warmup: int, runs: int) -> tuple:
    """(p50, p95) in ms of ``call()`` over ``runs`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def images_per_second(call, images: int, repeats: int) -> float:
    """Images per second of ``call()`` on ``images`` images, timed over ``repeats`` calls after one warm-up."""
    call()
    started = time.perf_counter()
    for _ in range(repeats):
        call()
    return repeats * images / (time.perf_counter() - started)


def others_now(seconds: float = PROBE_S) -> float | None:
    """Cores' worth of CPU other processes use right now, over ``seconds`` (None where unknown)."""
    start = snapshot()
    time.sleep(seconds)
    return use(start, snapshot(), 1)["others"]


def busy_warning(threads: int, seconds: float = PROBE_S) -> str | None:
    """One line when other processes already load the cores this process is about to time."""
    others = others_now(seconds)
    wanted = max(1, min(threads, cpus()))
    if others is None or cpus() - others >= QUIET_SHARE * wanted:
        return None
    return (f"other processes are using {others:.1f} of this machine's {cpus()} cores: times measured now are "
            "marked busy and not compared (run with the machine quiet for speed figures)")


def any_busy(phases) -> bool | None:
    """True when any phase was busy, False when all were measured quiet, None when none was measured."""
    known = [p.get("busy") for p in phases if isinstance(p, dict) and p.get("busy") is not None]
    return any(known) if known else None

"""Process set-up that has to happen before torch loads: the CPU memory allocator.

glibc's default malloc returns freed memory to the system and maps it back on every training
step, which makes CPU training up to 4x slower. The harness re-executes itself once, with tcmalloc
preloaded when it is installed, else with glibc tunables that keep freed memory in the process.
``HARNESS_ALLOCATOR=system`` turns this off.
"""
from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path

TCMALLOC_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
    "/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4",
    "/usr/lib64/libtcmalloc_minimal.so.4",
    "/usr/lib/libtcmalloc_minimal.so.4",
)
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def find_tcmalloc() -> str | None:
    for candidate in TCMALLOC_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    found = ctypes.util.find_library("tcmalloc_minimal")
    return found if found and Path(found).is_absolute() else None


def allocator_env(environ: dict) -> dict | None:
    """The environment to re-execute with, or None when nothing needs to change."""
    if environ.get("HARNESS_ALLOCATOR") or not sys.platform.startswith("linux"):
        return None
    env = dict(environ)
    tcmalloc = find_tcmalloc()
    if tcmalloc:
        env["LD_PRELOAD"] = ":".join(filter(None, [tcmalloc, environ.get("LD_PRELOAD")]))
        env["HARNESS_ALLOCATOR"] = "tcmalloc"
    else:
        env["GLIBC_TUNABLES"] = ":".join(filter(None, [environ.get("GLIBC_TUNABLES"), GLIBC_TUNABLES]))
        env["HARNESS_ALLOCATOR"] = "glibc-tunables"
    return env


def reexec_with_fast_allocator(argv: list) -> None:
    """Replace this process with ``python -m harness argv`` under a fast allocator (Linux only)."""
    env = allocator_env(os.environ)
    if env is None or "torch" in sys.modules:
        return
    os.execve(sys.executable, [sys.executable, "-m", "harness", *argv], env)


def allocator_in_use() -> str:
    """What this process really allocates with, read from the process itself rather than from the
    label the re-execution set: tcmalloc mapped into memory, glibc with the tunables in its
    start-up environment, or the system's default."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = ""
    if "libtcmalloc" in maps:
        return "tcmalloc"
    if GLIBC_TUNABLES in os.environ.get("GLIBC_TUNABLES", ""):  # glibc reads them at start-up only
        return "glibc-tunables"
    return "system"

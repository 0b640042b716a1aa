"""What produced a result: the harness commit, package versions, threads and allocator."""
from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the harness source that ran (with '+dirty' for uncommitted changes), if known.
    Cached: the first call, at the start of a run, names the code that was loaded, even if the
    checkout moves on while a long run goes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "harness", "plugins"],
                               cwd=here.parent, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict:
    import torch

    from harness.allocator import allocator_in_use

    return {
        "harness_commit": git_commit(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "packages": {name: version(name) for name in ("torchvision", "timm", "numpy", "scikit-learn", "pillow")},
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
        "allocator": allocator_in_use(),
    }

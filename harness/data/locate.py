"""Where data comes from when the user does not say: the documented default folder, then (for the
smoke profile only) the small CIFAR-10 sample shipped inside the package. Nothing downloads
unless the user passes ``--download``."""
from __future__ import annotations

import os
from pathlib import Path

from harness.data.cache import cache_dir
from harness.data.sources import download_canonical
from harness.errors import HarnessError

# looked for, in this order, inside the default data folder
DEFAULT_NAMES = ("cifar-10-batches-py", "cifar-10-python.tar.gz", "cifar10-jpeg.zip", "cifar10-jpeg")
SAMPLE = Path(__file__).parent / "sample" / "cifar10-sample.zip"


def data_dir() -> Path:
    """``$HARNESS_DATA_DIR``, else ``<cache dir>/datasets``; ``--download`` puts CIFAR-10 here."""
    if os.environ.get("HARNESS_DATA_DIR"):
        return Path(os.environ["HARNESS_DATA_DIR"])
    return cache_dir() / "datasets"


def resolve_source(data: str | None, *, profile: str, download: bool) -> Path:
    """The path to read, or a one-line HarnessError saying how to get data."""
    if data:
        path = Path(data).expanduser()
        if not path.exists():
            raise HarnessError(f"data path '{data}' does not exist; pass an existing folder, zip or .tar.gz")
        if not os.access(path, os.R_OK):
            raise HarnessError(f"data path '{data}' is not readable; check its permissions")
        return path
    for name in DEFAULT_NAMES:
        if (data_dir() / name).exists():
            return data_dir() / name
    if download:
        return download_canonical(data_dir())
    if profile == "smoke":
        return SAMPLE
    raise HarnessError(
        f"no CIFAR-10 found in {data_dir()}; pass --download to fetch it there, "
        "or --data PATH (a cifar-10-batches-py folder, its .tar.gz, or a zip/folder of images)"
    )

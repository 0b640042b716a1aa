"""Where data comes from and which dataset plugin reads it. ``--data PATH`` is read by the
dataset named with ``--dataset``, else by the first that accepts the path. Without ``--data``,
the data folder is searched for the names the datasets declare (``DatasetSpec.default_names``);
then, with ``--download``, a dataset that can fetches itself there; then, for the smoke profile
only, a dataset's small sample. Nothing downloads unless the user asks."""
from __future__ import annotations

import os
from pathlib import Path

from harness.data.cache import cache_dir
from harness.errors import HarnessError, unknown


def data_dir() -> Path:
    """``$HARNESS_DATA_DIR``, else ``<cache dir>/datasets``: where ``--download`` puts a dataset."""
    if os.environ.get("HARNESS_DATA_DIR"):
        return Path(os.environ["HARNESS_DATA_DIR"])
    return cache_dir() / "datasets"


def find_data(registry, data: str | None, dataset: str | None = None, *, profile: str,
              download: bool = False) -> tuple:
    """(the path to read, the ``DatasetSpec`` that reads it), or a one-line HarnessError saying
    how to get data."""
    if dataset and dataset not in registry.datasets:
        raise unknown("dataset", dataset, registry.datasets, "see 'harness list'")
    path = checked(data) if data else default_path(registry, dataset, profile=profile, download=download)
    return path, pick_dataset(registry, path, dataset)


def checked(data: str) -> Path:
    path = Path(data).expanduser()
    if not path.exists():
        raise HarnessError(f"data path '{data}' does not exist; pass an existing folder, zip or .tar.gz")
    if not os.access(path, os.R_OK):
        raise HarnessError(f"data path '{data}' is not readable; check its permissions")
    return path


def default_path(registry, dataset: str | None, *, profile: str, download: bool) -> Path:
    """The data path when none is given: a declared name in the data folder, a download, or a sample."""
    specs = [registry.datasets[dataset].spec] if dataset else [r.spec for r in registry.datasets.values()]
    for spec in specs:
        for name in spec.default_names:
            if (data_dir() / name).exists():
                return data_dir() / name
    fetchers = [spec for spec in specs if spec.download is not None]
    if download and fetchers:
        return Path(fetchers[0].download(data_dir()))
    samples = [spec.sample for spec in specs if spec.sample is not None]
    if profile == "smoke" and samples and not download:
        return Path(samples[0])
    names = [name for spec in specs for name in spec.default_names]
    looked = f" (looked for {', '.join(names)})" if names else ""
    if download:
        raise HarnessError(f"--download: {'dataset ' + repr(dataset) if dataset else 'no installed dataset'} "
                       "can download itself; pass --data PATH")
    can = f", or --download to fetch {' or '.join(spec.name for spec in fetchers)} there" if fetchers else ""
    raise HarnessError(f"no data found in {data_dir()}{looked}; pass --data PATH (a folder, zip or .tar.gz){can}")


def pick_dataset(registry, path: Path, name: str | None):
    """The dataset plugin that reads ``path``: ``name``, else the first that accepts it (a
    ``fallback`` dataset last)."""
    if name:
        if name not in registry.datasets:
            raise unknown("dataset", name, registry.datasets, "see 'harness list'")
        return registry.datasets[name].spec
    specs = sorted((r.spec for r in registry.datasets.values()), key=lambda spec: spec.fallback)
    for spec in specs:
        if spec.accepts(path):
            return spec
    raise HarnessError(f"no installed dataset reads '{path}' ({', '.join(registry.datasets)}: see 'harness list'); "
                       "pass --dataset NAME, or a folder/zip of images laid out <class>/* or train|test/<class>/*")

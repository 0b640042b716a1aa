"""Shared fixtures: small datasets written by the tests themselves, a tiny model, an isolated cache."""
from __future__ import annotations

import io
import pickle
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = ["cat", "dog", "frog"]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data folders, so nothing leaks between tests or from
    the developer's machine (and nothing is ever downloaded)."""
    base = tmp_path_factory.mktemp("harness-home")
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(base / "cache"))
    monkeypatch.setenv("HARNESS_DATA_DIR", str(base / "data"))
    monkeypatch.delenv("HARNESS_WEIGHTS_DIR", raising=False)
    # the hub is read from a local cache only: tests never reach the network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(base / "hub"))
    return base


def pattern_images(n_per_class: int, n_classes: int, size: int = 32, seed: int = 0):
    """Images a small model can learn: each class has its own colour, plus noise."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for label in range(n_classes):
        colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 31 + 160) % 256])
        for _ in range(n_per_class):
            noise = rng.integers(-40, 40, size=(3, size, size))
            xs.append(np.clip(colour[:, None, None] + noise, 0, 255).astype(np.uint8))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64)


def write_canonical(folder: Path, per_class=(20, 10), classes=CLASSES, bytes_keys=True) -> Path:
    """Write the cifar-10-batches-py files (5 train batches, a test batch, meta) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    train_x, train_y = pattern_images(per_class[0], len(classes), seed=1)
    test_x, test_y = pattern_images(per_class[1], len(classes), seed=2)
    order = np.random.default_rng(0).permutation(len(train_y))
    train_x, train_y = train_x[order], train_y[order]
    for i, chunk in enumerate(np.array_split(np.arange(len(train_y)), 5), start=1):
        entry = {key("data"): train_x[chunk].reshape(len(chunk), -1), key("labels"): train_y[chunk].tolist()}
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(entry))
    entry = {key("data"): test_x.reshape(len(test_y), -1), key("labels"): test_y.tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(entry))
    names = [c.encode() for c in classes] if bytes_keys else classes
    (folder / "batches.meta").write_bytes(pickle.dumps({key("label_names"): names}))
    return folder


def write_canonical_targz(path: Path, **kwargs) -> Path:
    folder = write_canonical(path.parent / "src" / "cifar-10-batches-py", **kwargs)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


def encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.transpose(1, 2, 0)).save(buffer, format=fmt)
    return buffer.getvalue()


def write_image_tree(root: Path, per_class=(20, 10), classes=CLASSES, wrapper="mydata", as_zip=False) -> Path:
    """A ``[wrapper/]train|test/<class>/*.png`` tree, as a folder or a zip."""
    files = {}
    for split, n, seed in (("train", per_class[0], 3), ("test", per_class[1], 4)):
        x, y = pattern_images(n, len(classes), seed=seed)
        for i, (image, label) in enumerate(zip(x, y)):
            prefix = f"{wrapper}/" if wrapper else ""
            files[f"{prefix}{split}/{classes[label]}/{i:04d}.png"] = encode(image)
    files[(f"{wrapper}/" if wrapper else "") + "README.txt"] = b"a stray file the loader must ignore"
    if as_zip:
        with zipfile.ZipFile(root, "w") as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return root
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root / wrapper if wrapper else root


def install_plugin(site, module: str, source: str, entry_name: str, dist="harness-testplugin"):
    """Make a real installed distribution on sys.path: a module plus dist-info with entry points."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[harness]\n{entry_name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    return folder

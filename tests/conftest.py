"""Shared fixtures: small datasets written by the tests themselves, plugin packages installed into a
temporary site folder, and an isolated HOME, cache, data, hub and weights folder for every test."""
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

pytest_plugins = ["pytester"]  # for the tests of the suite's own guards

CLASSES = ["cat", "dog", "frog"]


ISOLATED = ("HOME", "HARNESS_CACHE_DIR", "HARNESS_DATA_DIR", "HF_HUB_CACHE", "MPLCONFIGDIR", "TORCH_HOME",
            "XDG_CACHE_HOME")


def isolate(environ_set, base: Path) -> None:
    """Point every folder a run may write or read behind the user's back into ``base``; the hub
    is read from a local cache only: tests never reach the network."""
    for name, sub in (("HOME", "home"), ("HARNESS_CACHE_DIR", "cache"), ("HARNESS_DATA_DIR", "data"),
                      ("HF_HUB_CACHE", "hub"), ("MPLCONFIGDIR", "mpl"), ("TORCH_HOME", "torch"),
                      ("XDG_CACHE_HOME", "xdg")):
        (base / sub).mkdir(parents=True, exist_ok=True)
        environ_set(name, str(base / sub))
    environ_set("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session", autouse=True)
def isolated_session(tmp_path_factory):
    """Module- and session-scoped fixtures run before the per-test isolation below: they get a
    home of their own too (and the user's weights folder is never looked at)."""
    import os

    saved = {name: os.environ.get(name) for name in (*ISOLATED, "HF_HUB_OFFLINE", "HARNESS_WEIGHTS_DIR")}
    os.environ.pop("HARNESS_WEIGHTS_DIR", None)
    isolate(os.environ.__setitem__, tmp_path_factory.mktemp("session-home"))
    # a command's default --out (results/) is relative: what a user ran in the checkout must not meet the tests
    started_in = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("session-cwd"))
    yield
    os.chdir(started_in)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own home, cache and data folders, so nothing leaks between tests or from
    the developer's machine (and nothing is ever downloaded)."""
    base = tmp_path_factory.mktemp("harness-home")
    isolate(monkeypatch.setenv, base)
    monkeypatch.delenv("HARNESS_WEIGHTS_DIR", raising=False)
    (base / "cwd").mkdir()
    monkeypatch.chdir(base / "cwd")
    return base


LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Any connection a test makes to an address other than loopback fails that test, naming it."""
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not host.startswith(LOOPBACK):
                pytest.fail(f"this test opened a network connection to {host}:{address[1]}; tests reach loopback only",
                            pytrace=False)

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


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


@pytest.fixture
def tree_decodes(monkeypatch):
    """The image-tree decodes made during the test, as (folder, size): a cache hit adds none."""
    from harness.data import folders

    calls, real = [], folders.read_tree

    def counting(path, size, *args, **kwargs):
        calls.append((str(path), size))
        return real(path, size, *args, **kwargs)

    monkeypatch.setattr(folders, "read_tree", counting)
    import harness_datasets  # the built-in dataset plugin holds its own name for it (harness.toolkit's)

    monkeypatch.setattr(harness_datasets, "read_tree", counting)
    return calls

"""Each data source loads to the same in-memory form; the cache is reused and invalidated."""
import hashlib
import os

import numpy as np
import pytest

from harness import plugin_registry
from harness.data import folders
from harness.data.cache import cached_images
from harness.data.locate import find_data
from harness.errors import HarnessError
from harness_datasets import cifar10 as sources
from harness_datasets import load_cifar10
from harness_datasets.cifar10 import SAMPLE

from conftest import CLASSES, pattern_images, write_canonical, write_canonical_targz, write_image_tree


def check(images, n_train, n_test, classes=CLASSES):
    assert images.classes == classes
    assert images.train_x.shape == (n_train, 3, 32, 32) and images.train_x.dtype == np.uint8
    assert images.test_x.shape == (n_test, 3, 32, 32)
    assert sorted(set(images.train_y.tolist())) == list(range(len(classes)))


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_canonical_folder(tmp_path, bytes_keys):
    folder = write_canonical(tmp_path / "cifar-10-batches-py", bytes_keys=bytes_keys)
    for path in (folder, tmp_path):  # the batches folder itself, or the folder holding it
        assert sources.is_canonical(path)
        images = load_cifar10(path)
        check(images, 60, 30)
    expected_x, _ = pattern_images(10, 3, seed=2)
    np.testing.assert_array_equal(images.test_x, expected_x)


def test_canonical_targz(tmp_path):
    archive = write_canonical_targz(tmp_path / "cifar-10-python.tar.gz")
    assert sources.is_canonical(archive)
    check(load_cifar10(archive), 60, 30)


@pytest.mark.parametrize("as_zip", [False, True])
def test_image_tree_folder_and_zip(tmp_path, as_zip):
    path = write_image_tree(tmp_path / ("t.zip" if as_zip else "t"), as_zip=as_zip)
    assert folders.is_split_tree(path)
    images = load_cifar10(path)
    check(images, 60, 30)
    expected_x, _ = pattern_images(20, 3, seed=3)  # PNG is lossless: pixels survive exactly
    np.testing.assert_array_equal(np.sort(images.train_x.reshape(60, -1), 0), np.sort(expected_x.reshape(60, -1), 0))


def test_shipped_sample_is_cifar10():
    images = load_cifar10(SAMPLE)
    assert images.classes[:3] == ["airplane", "automobile", "bird"] and len(images.classes) == 10
    assert len(images.train_y) == 2000 and len(images.test_y) == 500
    assert np.bincount(images.train_y).tolist() == [200] * 10


def test_unreadable_image_is_skipped_with_warning(tmp_path, capsys):
    folder = write_image_tree(tmp_path / "t")
    (folder / "train" / "cat" / "broken.png").write_bytes(b"not a png")
    images = load_cifar10(folder)
    assert len(images.train_y) == 60
    assert "skipped 1 unreadable image" in capsys.readouterr().err


def test_one_class_is_refused(tmp_path):
    folder = write_image_tree(tmp_path / "t", classes=["only"])
    with pytest.raises(HarnessError, match="at least 2"):
        folders.read_tree(folder, None)


def test_cache_is_reused_and_invalidated(tmp_path):
    folder = write_canonical(tmp_path / "c")
    calls = []

    def decode(files):
        calls.append(1)
        return sources.read_canonical(folder)

    first = cached_images(folder, "test", 32, decode)
    second = cached_images(folder, "test", 32, decode)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.train_x, second.train_x)
    os.utime(folder / "test_batch", ns=(1, 1))  # the source changed
    cached_images(folder, "test", 32, decode)
    assert len(calls) == 2


def test_decoded_and_cached_arrays_have_the_same_layout(tmp_path, tree_decodes):
    """Freshly decoded and cache-loaded images must be laid out alike: conv kernels follow the
    layout, and a different kernel changes results in the last bits."""
    folder = write_image_tree(tmp_path / "t")
    fresh, cached = load_cifar10(folder), load_cifar10(folder)
    assert len(tree_decodes) == 1  # the second came from the cache
    for images in (fresh, cached):
        assert images.train_x.flags["C_CONTIGUOUS"] and images.test_x.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(fresh.train_x, cached.train_x)


def resolve_source(data, **where):
    return find_data(plugin_registry.installed(), data, **where)[0]


def test_missing_data_path_is_one_line_error(tmp_path):
    with pytest.raises(HarnessError, match="does not exist"):
        resolve_source(str(tmp_path / "nope"), profile="quick", download=False)


def test_default_location_then_sample_then_error(tmp_path, monkeypatch):
    assert resolve_source(None, profile="smoke", download=False) == SAMPLE
    with pytest.raises(HarnessError, match="looked for cifar-10-batches-py, .*--download to fetch cifar10 there"):
        resolve_source(None, profile="quick", download=False)
    data_dir = tmp_path / "home"
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    write_canonical(data_dir / "cifar-10-batches-py")
    assert resolve_source(None, profile="quick", download=False) == data_dir / "cifar-10-batches-py"


@pytest.fixture
def local_http(tmp_path):
    """Serve ``tmp_path/release`` over HTTP on loopback, as the dataset's host would."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    (tmp_path / "release").mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "release"))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_uses_torchvision(tmp_path, monkeypatch, local_http):
    """The real download path, pointed at a local copy of the release (tests never go online)."""
    from torchvision.datasets import CIFAR10

    # str keys: torchvision reads batches with encoding="latin1", which only the Python 2 original maps to str
    archive = write_canonical_targz(tmp_path / "release" / "cifar-10-python.tar.gz", bytes_keys=False)
    src = tmp_path / "release" / "src" / "cifar-10-batches-py"

    def md5(path):
        return hashlib.md5(path.read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "url", f"{local_http}/{archive.name}")
    monkeypatch.setattr(CIFAR10, "tgz_md5", md5(archive))
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", md5(src / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(src / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5(src / "batches.meta")})
    path = resolve_source(None, profile="quick", download=True)
    assert path == resolve_source(None, profile="quick", download=False)  # found there from now on
    check(load_cifar10(path), 60, 30)


DOTS = """
    import json
    from pathlib import Path

    import numpy as np
    from harness import DatasetSpec, hookimpl
    from harness.toolkit import Images

    CLASSES = ["dim", "bright"]

    def download(folder):
        # what a real plugin fetches from its host, made here: tests never go online
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        y = np.arange(240) % 2
        x = (np.random.default_rng(0).integers(0, 90, (240, 3, 32, 32)) + 120 * y[:, None, None, None])
        np.savez(folder / "dots.npz", x=x.astype(np.uint8), y=y)
        (folder / "downloads.log").open("a").write("dots\\n")
        return folder / "dots.npz"

    def load(path, size):
        found = np.load(path)
        x, y = found["x"], found["y"]
        return Images(CLASSES, x[:200], y[:200], x[200:], y[200:], source=str(path))

    def describe(path):
        y = np.load(path)["y"]
        counts = {"train": {c: int((y[:200] == i).sum()) for i, c in enumerate(CLASSES)},
                  "test": {c: int((y[200:] == i).sum()) for i, c in enumerate(CLASSES)}}
        return {"source": str(path), "classes": CLASSES, "layout": "dots npz", "counts": counts,
                "sizes": {"32x32": len(y)}, "unreadable": 0}

    @hookimpl
    def register_datasets(register):
        register(DatasetSpec("dots", load=load, accepts=lambda path: Path(path).name.endswith("dots.npz"),
                             default_names=("dots.npz",), download=download, describe=describe,
                             description="dim and bright dots, fetched by its own download"))
"""


def test_an_outside_dataset_finds_downloads_and_describes_itself_as_cifar10_does(site, tmp_path, capsys,
                                                                                monkeypatch):
    """A dataset plugin outside the repository: found by its own file name in the data folder,
    fetched by its own download with --download, described by `harness data info`."""
    import json

    from conftest import install_plugin
    from harness.cli import main

    install_plugin(site, "dots_data", DOTS, "dots_data", dist="harness-dots")
    data_dir = tmp_path / "data-home"
    monkeypatch.setenv("HARNESS_DATA_DIR", str(data_dir))
    run = ["run", "--model", "baseline_cnn", "--profile", "quick", "--dataset", "dots", "--set", "epochs=1",
           "--set", "data.val_size=40", "--out", str(tmp_path / "out")]
    assert main(run) == 2
    assert "no data found in" in capsys.readouterr().err and not data_dir.exists()  # nothing fetched unasked
    assert main([*run, "--download"]) == 0
    config = json.loads((tmp_path / "out" / "baseline_cnn" / "config.json").read_text())
    assert config["data_source"] == str(data_dir / "dots.npz") and config["dataset"] == "dots"
    assert main([*run, "--overwrite"]) == 0  # found in the data folder from now on: fetched once
    assert (data_dir / "downloads.log").read_text() == "dots\n"
    capsys.readouterr()
    assert main(["data", "info", "--dataset", "dots", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "dots npz" and info["counts"]["test"] == {"dim": 20, "bright": 20}

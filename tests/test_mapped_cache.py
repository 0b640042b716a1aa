"""The decoded-image cache: ``.npy`` files memory-mapped, not read; damaged entries decoded again;
splits of a mapped dataset that copy no images; training from the map identical to training from
memory."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_image_tree
from harness.data import folders
from harness.data.cache import ARRAYS, _mapped, cached_images
from harness.data.rows import Rows, as_tensor
from harness.data.splits import make_splits
from harness.specs import Augment, Recipe, Stage
from harness.train import Setup, Trainer, Watch
from harness_datasets import load_imagefolder
from helpers.models import default_callbacks, small_cnn


def photo_folder(root: Path, per_class=(24, 8)) -> Path:
    return write_image_tree(root, per_class=per_class, wrapper="")


def entry_of(images) -> Path:
    return Path(images.entry)


def test_cached_images_are_memory_mapped_and_equal_a_plain_decode(tmp_path, tree_decodes, monkeypatch):
    monkeypatch.setattr(folders, "DECODE_CHUNK", 5)  # several chunks, on several threads
    folder = photo_folder(tmp_path / "t")
    plain = folders.read_tree(folder, 12)
    first, second = load_imagefolder(folder, 12), load_imagefolder(folder, 12)
    assert len(tree_decodes) == 2  # the plain decode and the first load; the second mapped the entry
    for images in (first, second):
        assert _mapped(images.train_x) is not None and _mapped(images.test_x) is not None
        assert images.train_x.flags["C_CONTIGUOUS"]
        for name in ARRAYS:
            np.testing.assert_array_equal(getattr(images, name), getattr(plain, name))
    # every image decoded in order, whatever thread decoded it
    layout = folders.layout(folder)
    tree = folders.Tree(folder)
    names = [n for c in layout.classes for n in layout.files[("train", c)]]
    expected = np.stack([folders.decode(tree.read(n), 12) for n in names])
    np.testing.assert_array_equal(plain.train_x, expected)


def test_a_class_folder_tree_is_split_into_mapped_arrays(tmp_path):
    folder = tmp_path / "flat"
    write_image_tree(folder, per_class=(20, 2), wrapper="")
    for cls in ("cat", "dog", "frog"):  # <class>/* without train/test
        (folder / "train" / cls).rename(folder / cls)
    shutil.rmtree(folder / "train")
    shutil.rmtree(folder / "test")
    mapped, plain = load_imagefolder(folder, 8), folders.read_tree(folder, 8)
    assert sorted(p.name for p in entry_of(mapped).iterdir()) == ["index.json", *sorted(f"{n}.npy" for n in ARRAYS)]
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(mapped, name), getattr(plain, name))


@pytest.mark.parametrize("damage", ["truncate", "header", "index", "missing"])
def test_a_damaged_or_partial_entry_is_decoded_again(tmp_path, tree_decodes, damage):
    folder = photo_folder(tmp_path / "t")
    good = load_imagefolder(folder, 8)
    expected = np.array(good.train_x)
    entry = entry_of(good)
    del good
    target = entry / "train_x.npy"
    if damage == "truncate":
        with open(target, "r+b") as handle:
            handle.truncate(target.stat().st_size - 100)
    elif damage == "header":  # same size, another shape in the header
        data = bytearray(target.read_bytes())
        at = data.index(b"'shape': (") + len(b"'shape': (")
        data[at] = ord("9") if data[at] != ord("9") else ord("8")
        target.write_bytes(bytes(data))
    elif damage == "index":
        (entry / "index.json").write_text("{not json")
    else:
        (entry / "test_y.npy").unlink()
    again = load_imagefolder(folder, 8)
    assert len(tree_decodes) == 2, damage
    np.testing.assert_array_equal(again.train_x, expected)


def test_one_decode_when_several_load_at_once(tmp_path, tree_decodes):
    folder = photo_folder(tmp_path / "t")
    loaded = []
    threads = [threading.Thread(target=lambda: loaded.append(load_imagefolder(folder, 8))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loaded) == 3 and len(tree_decodes) == 1
    assert len({images.entry for images in loaded}) == 1


def test_an_in_memory_decoder_is_written_to_the_entry(tmp_path):
    from conftest import pattern_images
    from harness.data.images import Images

    x, y = pattern_images(30, 3, size=8, seed=1)
    source = tmp_path / "source.bin"
    source.write_bytes(b"x")
    images = cached_images(source, "test", 8, lambda files: Images(["a", "b", "c"], x, y, x[:6], y[:6]))
    assert _mapped(images.train_x) is not None
    np.testing.assert_array_equal(images.train_x, x)
    assert (entry_of(images) / "index.json").stat().st_mode & 0o044 == 0o044  # under the usual umask


def test_splits_of_a_mapped_dataset_copy_no_images(tmp_path):
    folder = photo_folder(tmp_path / "t", per_class=(40, 10))
    mapped = load_imagefolder(folder, 8)
    plain = folders.read_tree(folder, 8)
    a = make_splits(mapped, val_size=12, seed=3)
    b = make_splits(plain, val_size=12, seed=3)
    assert isinstance(a.train_x, Rows) and isinstance(a.val_x, Rows)
    assert np.shares_memory(a.test_x, mapped.test_x)  # the whole test split: the map itself
    for name in ("train_x", "val_x", "test_x"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), getattr(b, name))
    index = torch.tensor([5, 0, 17, 3])  # any order, as a shuffled batch asks
    np.testing.assert_array_equal(as_tensor(a.train_x)[index].numpy(), b.train_x[index.numpy()])
    np.testing.assert_array_equal(as_tensor(a.val_x)[2:7].numpy(), b.val_x[2:7])
    capped = make_splits(mapped, val_size=12, test_size=9, seed=3)
    np.testing.assert_array_equal(capped.test_x, make_splits(plain, val_size=12, test_size=9, seed=3).test_x)


def test_training_from_the_map_equals_training_from_memory(tmp_path):
    folder = photo_folder(tmp_path / "t", per_class=(40, 10))
    recipe = Recipe(stages=[Stage(epochs=2, batch_size=16, early_stopping=None)], augment=Augment(flip=True, translate=1),
                    eval_batch_size=7)
    histories = []
    for images in (folders.read_tree(folder, 8), load_imagefolder(folder, 8)):
        splits = make_splits(images, val_size=12, seed=0)
        result = Trainer(small_cnn(), splits, recipe, Setup(input_size=8, seed=0),
                         Watch(show_progress=False, callbacks=default_callbacks())).fit()
        histories.append([{k: v for k, v in row.items() if "time" not in k} for row in result.history])
    assert histories[0] == histories[1]


def test_data_cache_lists_entries_and_removes_what_is_asked(tmp_path, capsys):
    """`harness data cache`: every entry with its state; --older-than, --prune, --clear take out
    theirs, never one a process is decoding now."""
    import fcntl
    import json
    import os
    import time

    from harness.cli import main
    from harness.data.cache import INDEX, cache_dir

    def listed(*flags):
        assert main(["data", "cache", "--json", *flags]) == 0
        out = json.loads(capsys.readouterr().out)
        return {r["name"]: r["state"] for r in out["entries"]}, {r["name"] for r in out["removed"]}

    old, recent, damaged = (entry_of(load_imagefolder(photo_folder(tmp_path / name), 12)) for name in ("a", "b", "c"))
    (damaged / "test_x.npy").write_bytes(b"\x93NUMPY")
    arrays = cache_dir() / "arrays"
    (arrays / "cifar10-old.npz").write_bytes(b"v1")
    (arrays / f".{old.name}.4242.abcdefgh.tmp").mkdir()  # a killed decoder's scratch
    busy = arrays / "busy-0123"
    (arrays / f".{busy.name}.99.zyxwvuts.tmp").mkdir()
    ten_days_ago = time.time() - 10 * 86400
    for path in old.iterdir():
        os.utime(path, (ten_days_ago, ten_days_ago))
    states, _ = listed()
    assert states == {old.name: "ok", recent.name: "ok", damaged.name: "damaged", "cifar10-old.npz": "older format",
                      f".{old.name}.4242.abcdefgh.tmp": "unfinished", f".{busy.name}.99.zyxwvuts.tmp": "unfinished"}
    assert listed()[0] == states  # listing is not a use
    with open(arrays / f".{busy.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a decoder building busy-0123 holds it
        states, removed = listed("--older-than", "5")
        assert removed == {old.name} and states[f".{busy.name}.99.zyxwvuts.tmp"] == "being decoded"
        states, removed = listed("--prune")
        assert removed == {damaged.name, "cifar10-old.npz", f".{old.name}.4242.abcdefgh.tmp"}
        assert set(states) == {recent.name, f".{busy.name}.99.zyxwvuts.tmp"}
        before = (recent / INDEX).stat().st_mtime
        time.sleep(0.01)
        load_imagefolder(tmp_path / "b", 12)  # a use: mapped from the cache, its last use now
        assert (recent / INDEX).stat().st_mtime > before
        states, removed = listed("--clear")
        assert removed == {recent.name} and set(states) == {f".{busy.name}.99.zyxwvuts.tmp"}
    assert main(["data", "cache"]) == 0
    assert "1 entry" in capsys.readouterr().out

"""Any image folder or zip: both layouts, every common format and mode, bad files skipped and
counted, clear errors for folders that cannot be a dataset."""
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from harness.cli import main
from harness.data import folders
from harness.errors import HarnessError
from harness_datasets import load_imagefolder


def save(path, image, fmt):
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)


def mixed_folder(root):
    """Three classes in <class>/* layout: JPEG, PNG, BMP, WebP; RGB, L, P, RGBA, CMYK; many sizes;
    plus a corrupt file, a zero-byte file, a truncated JPEG and stray non-image files."""
    rng = np.random.default_rng(0)
    formats = [("JPEG", ".jpg", "RGB"), ("PNG", ".png", "L"), ("BMP", ".bmp", "RGB"), ("WEBP", ".webp", "RGB"),
               ("PNG", ".png", "P"), ("PNG", ".png", "RGBA"), ("JPEG", ".jpeg", "CMYK")]
    for c, cls in enumerate(["apple", "banana", "cherry"]):
        for i, (fmt, suffix, mode) in enumerate(formats):
            size = (20 + 7 * i + c, 30 + 3 * i)
            pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            image = Image.fromarray(pixels).convert(mode)
            save(root / cls / f"{i}{suffix}", image, fmt)
    (root / "apple" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (root / "banana" / "empty.png").write_bytes(b"")
    good = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good, format="JPEG")
    (root / "cherry" / "truncated.jpg").write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    (root / "LICENSE").write_text("stray file beside the class folders")
    (root / "apple" / "notes.txt").write_text("not an image: ignored, not counted")
    return root


def test_mixed_folder_loads_with_counts_and_one_warning(tmp_path, capsys):
    root = mixed_folder(tmp_path / "fruit")
    images = load_imagefolder(root, 24)
    assert images.classes == ["apple", "banana", "cherry"]
    total = len(images.train_y) + len(images.test_y)
    assert total == 21  # 7 good images per class; 3 bad files skipped
    assert images.train_x.shape[1:] == (3, 24, 24) and images.train_x.dtype == np.uint8
    assert np.bincount(images.test_y).tolist() == [1, 1, 1]  # a stratified 20% test split, made here
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "skipped 3 unreadable image file(s)" in err
    assert "corrupt.jpg" in err and "empty.png" in err and "truncated.jpg" in err


def test_transparency_is_composited_onto_white(tmp_path):
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    save(tmp_path / "a" / "clear.png", rgba, "PNG")
    save(tmp_path / "b" / "red.png", Image.new("RGB", (8, 8), (255, 0, 0)), "PNG")
    decoded = folders.decode((tmp_path / "a" / "clear.png").read_bytes(), 8)
    assert decoded.min() == 255  # fully transparent -> white, not black


def test_split_is_stable_and_zip_with_wrapper_matches_folder(tmp_path):
    root = mixed_folder(tmp_path / "fruit")
    archive = tmp_path / "fruit.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, "wrapper/" + path.relative_to(root).as_posix())
    a = folders.read_tree(root, 16)
    b = folders.read_tree(archive, 16)
    assert a.classes == b.classes
    np.testing.assert_array_equal(a.test_x, b.test_x)
    np.testing.assert_array_equal(a.train_y, b.train_y)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: save(r / "only" / "a.png", Image.new("RGB", (4, 4)), "PNG"), "1 class folder"),
        (lambda r: (r / "empty").mkdir(parents=True), "0 class folder"),
        (lambda r: (save(r / "a" / "x.png", Image.new("RGB", (4, 4)), "PNG"), (r / "b").mkdir()), "has no images"),
    ],
)
def test_folders_that_cannot_be_datasets_are_one_line_errors(tmp_path, make, message):
    root = tmp_path / "data"
    root.mkdir()
    make(root)
    with pytest.raises(HarnessError, match=message) as error:
        folders.read_tree(root, 8)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_a_zip_or_folder_is_refused(tmp_path, capsys):
    fake = tmp_path / "data.zip"
    fake.write_bytes(b"this is not a zip")
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(fake),
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a folder or a zip" in err and err.count("\n") == 1


def test_data_info_and_show(tmp_path, capsys):
    root = mixed_folder(tmp_path / "fruit")
    assert main(["data", "info", "--data", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == "imagefolder" and info["classes"] == ["apple", "banana", "cherry"]
    assert info["counts"]["all"] == {"apple": 8, "banana": 8, "cherry": 8}  # files found, bad ones included
    # info reads headers only: the truncated JPEG has a good one and is caught when decoding
    assert info["unreadable"] == 2 and len(info["sizes"]) > 5
    png = tmp_path / "grid.png"
    assert main(["data", "show", "--data", str(root), "--out", str(png), "--set", "augment.rotation=30"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    assert main(["data", "info"]) == 0  # no --data: the shipped CIFAR-10 sample
    assert "airplane" in capsys.readouterr().out


def test_run_on_a_class_folder_dataset_uses_its_class_names(tmp_path):
    root = mixed_folder(tmp_path / "fruit")
    out = tmp_path / "out"
    assert main(["run", "--model", "baseline_cnn", "--profile", "smoke", "--data", str(root), "--out", str(out),
                 "--set", "data.val_size=3", "--set", "epochs=1"]) == 0
    metrics = json.loads((out / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["classes"] == ["apple", "banana", "cherry"]
    assert set(metrics["per_class"]) == {"apple", "banana", "cherry"}
    assert (out / "samples.png").read_bytes()[:4] == b"\x89PNG"


def test_cache_is_rebuilt_when_an_image_changes(tmp_path, tree_decodes):
    root = mixed_folder(tmp_path / "fruit")
    first = load_imagefolder(root, 16)
    again = load_imagefolder(root, 16)
    assert len(tree_decodes) == 1  # the second load was a cache hit
    np.testing.assert_array_equal(first.train_x, again.train_x)
    target = root / "apple" / "0.jpg"
    save(target, Image.new("RGB", (30, 30), (0, 255, 0)), "JPEG")  # same name, new content
    changed = load_imagefolder(root, 16)
    assert len(tree_decodes) == 2  # decoded again
    assert not np.array_equal(np.concatenate([first.train_x, first.test_x]),
                              np.concatenate([changed.train_x, changed.test_x]))
    other_size = load_imagefolder(root, 8)  # the target size is part of the key too
    assert len(tree_decodes) == 3
    assert other_size.train_x.shape[-1] == 8


def test_oversized_images_are_skipped_not_decoded(monkeypatch):
    """The decompression-bomb guard: a small file that unpacks to a huge image is refused from its
    header -- PIL's own bomb check for very large ones, MAX_PIXELS for the rest."""
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, "PNG")  # 144 M pixels in a few kB
    assert len(buffer.getvalue()) < 100_000
    assert folders.decode(buffer.getvalue(), 32) is None
    small = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 10, 10)).save(small, "PNG")
    assert folders.decode(small.getvalue(), 32).shape == (3, 32, 32)
    monkeypatch.setattr(folders, "MAX_PIXELS", 40 * 40 - 1)  # now over the limit: refused by the harness itself
    assert folders.decode(small.getvalue(), 32) is None

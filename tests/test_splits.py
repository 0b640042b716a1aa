"""The validation split comes from the training set: stratified, disjoint, stable under the seed."""
import numpy as np
import pytest

from harness.data import Images
from harness.data.splits import make_splits
from harness.errors import HarnessError


def numbered_images(n_train=1000, n_test=200, classes=10):
    """Each image's pixels encode its index, so splits can be traced back to the source."""
    ids = np.arange(n_train)
    train_x = np.zeros((n_train, 3, 4, 4), np.uint8)
    train_x[:, 0, 0, 0] = ids % 256
    train_x[:, 0, 0, 1] = ids // 256
    test_x = np.zeros((n_test, 3, 4, 4), np.uint8)
    return Images([str(c) for c in range(classes)], train_x, ids % classes, test_x, np.arange(n_test) % classes)


def ids(x):
    return set((x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 0, 1].astype(int)).tolist())


def test_split_is_stratified_and_disjoint():
    splits = make_splits(numbered_images(), val_size=200, seed=0)
    assert len(splits.val_y) == 200 and len(splits.train_y) == 800
    assert np.bincount(splits.val_y).tolist() == [20] * 10
    assert np.bincount(splits.train_y).tolist() == [80] * 10
    assert ids(splits.train_x).isdisjoint(ids(splits.val_x))
    assert ids(splits.train_x) | ids(splits.val_x) == set(range(1000))
    assert len(splits.test_y) == 200  # the test set is untouched


def test_split_is_stable_under_seed_and_changes_with_it():
    a = make_splits(numbered_images(), val_size=200, seed=0)
    b = make_splits(numbered_images(), val_size=200, seed=0)
    c = make_splits(numbered_images(), val_size=200, seed=1)
    assert ids(a.val_x) == ids(b.val_x)
    assert ids(a.val_x) != ids(c.val_x)


def test_caps_are_stratified_and_inside_the_training_part():
    splits = make_splits(numbered_images(), val_size=100, train_size=300, test_size=50, seed=0)
    assert np.bincount(splits.train_y).tolist() == [30] * 10
    assert np.bincount(splits.test_y).tolist() == [5] * 10
    assert ids(splits.train_x).isdisjoint(ids(splits.val_x))


def test_impossible_val_size_is_a_clear_error():
    with pytest.raises(HarnessError, match="val_size"):
        make_splits(numbered_images(), val_size=5000)


def _splits_made(tmp_path, monkeypatch, overrides: dict) -> list:
    """The splits of three seeds' runs of baseline_cnn (each job stopped once its split is made)."""
    from harness import plugin_registry, runner
    from harness.data import splits as splitting

    made, real = [], splitting.make_splits

    def spy(images, **options):
        result = real(images, **options)
        made.append((result.val_x.copy(), result.train_x.copy(), result.test_x.copy()))
        raise RuntimeError("stop here: the split is all this test needs")

    monkeypatch.setattr(splitting, "make_splits", spy)
    request = runner.RunRequest(models=["baseline_cnn"], profile="smoke", out=tmp_path, seeds=[0, 1, 2],
                                overrides=overrides)
    assert runner.run(plugin_registry.load(), request) == 1  # every job stopped by the spy
    assert len(made) == 3
    return made


def test_every_run_seed_draws_its_own_split_and_the_same_test_images(tmp_path, monkeypatch):
    """--seeds varies every source of randomness: each seed validates on other images; the test set stays."""
    made = _splits_made(tmp_path, monkeypatch, {})
    for val_x, train_x, test_x in made[1:]:
        assert not np.array_equal(val_x, made[0][0]) and not np.array_equal(train_x, made[0][1])
        assert np.array_equal(test_x, made[0][2])


def test_a_pinned_split_seed_validates_every_seed_on_the_same_images(tmp_path, monkeypatch):
    made = _splits_made(tmp_path, monkeypatch, {"data.split_seed": "0"})
    for val_x, train_x, test_x in made[1:]:
        assert np.array_equal(val_x, made[0][0]) and np.array_equal(train_x, made[0][1])
        assert np.array_equal(test_x, made[0][2])

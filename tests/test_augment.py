"""Batched augmentation does what each setting says and is reproducible under a seed."""
import torch

from harness.data.augment import augment_batch
from harness.specs import Augment


def batch(n=64, size=16):
    # a left-to-right ramp with a bright top-left corner: flips, shifts and rotations all show
    x = torch.linspace(0, 1, size).expand(n, 3, size, size).clone()
    x[:, :, :3, :3] = 1.0
    return x


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_identity_when_off():
    x = batch()
    assert augment_batch(x, Augment(), gen()) is x


def test_flip_mirrors_about_half_the_images():
    x = batch()
    out = augment_batch(x, Augment(flip=True), gen())
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    unchanged = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert (flipped | unchanged).all()
    assert 16 < flipped.sum() < 48


def test_shift_rotation_zoom_change_images_within_range():
    x = batch()
    for augment in (Augment(shift=0.2), Augment(rotation=30), Augment(zoom=0.3)):
        out = augment_batch(x, augment, gen())
        assert out.shape == x.shape
        changed = (out - x).abs().flatten(1).max(1).values > 1e-3
        assert changed.float().mean() > 0.9, augment
        assert out.min() >= 0 and out.max() <= 1  # nearest-edge fill never invents values


def test_zero_strength_affine_is_identity():
    x = batch()
    out = augment_batch(x, Augment(shift=1e-9), gen())
    assert torch.allclose(out, x, atol=1e-5)


def test_same_seed_same_result_other_seed_differs():
    augment = Augment(rotation=15, flip=True, zoom=0.1, shift=0.1)
    a = augment_batch(batch(), augment, gen(1))
    b = augment_batch(batch(), augment, gen(1))
    c = augment_batch(batch(), augment, gen(2))
    assert torch.equal(a, b) and not torch.equal(a, c)

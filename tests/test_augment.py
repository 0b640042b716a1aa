"""Batched augmentation does what each setting says and is reproducible under a seed."""
import pytest
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


def marker(size=16, row=2, col=3):
    """One bright pixel on a dark image, batch of one."""
    x = torch.zeros(1, 1, size, size)
    x[0, 0, row, col] = 1.0
    return x


def transforms(flip=False, angle=0.0, scale=1.0, shift_x=0.0, shift_y=0.0):
    from harness.data.augment import Transforms

    return Transforms(torch.tensor([flip]), torch.tensor([angle]), torch.tensor([scale]),
                      torch.tensor([shift_x]), torch.tensor([shift_y]))


def brightest(x):
    flat = int(x[0, 0].flatten().argmax())
    return divmod(flat, x.shape[-1])


def test_shift_moves_content_by_the_given_fraction():
    from harness.data.augment import apply

    assert brightest(apply(marker(), transforms(shift_x=0.25))) == (2, 3 + 4)
    assert brightest(apply(marker(), transforms(shift_y=0.5))) == (2 + 8, 3)


def test_rotation_by_90_degrees_turns_content_counter_clockwise():
    from harness.data.augment import apply

    # counter-clockwise by 90: the top-left region goes to the bottom-left
    row, col = brightest(apply(marker(16, 2, 3), transforms(angle=90.0)))
    assert (row, col) == (16 - 1 - 3, 2)


def test_zoom_scales_about_the_centre():
    from harness.data.augment import apply

    x = torch.zeros(1, 1, 16, 16)
    x[0, 0, 6:10, 6:10] = 1.0  # a 4x4 square in the middle
    zoomed = apply(x, transforms(scale=2.0))
    assert (zoomed[0, 0] > 0.5).sum() == 64  # 8x8: twice the side
    shrunk = apply(x, transforms(scale=0.5))
    assert (shrunk[0, 0] > 0.5).sum() == 4  # 2x2


def test_flip_transform_mirrors_exactly_through_resampling():
    from harness.data.augment import apply

    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(apply(x, transforms(flip=True)), x.flip(-1), atol=1e-6)


def test_translate_moves_whole_pixels_with_reflected_edges():
    """Every output is its input moved by (dy, dx) in [-p, p]^2, pixel for pixel (no blur), and
    all offsets occur."""
    from harness.data.augment import translate

    p = 2
    x = torch.rand(300, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    y = translate(x, p, torch.Generator().manual_seed(1))
    assert y.shape == x.shape
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(-p, p + 1) for dx in range(-p, p + 1)
                 if torch.equal(y[i, :, p:-p, p:-p], x[i, :, p - dy : 12 - p - dy, p - dx : 12 - p - dx])]
        assert len(found) == 1
        offsets.add(found[0])
        dy, dx = found[0]
        if dy == 0 and dx > 0:  # the column moved in from the left edge mirrors the second column
            assert torch.equal(y[i, :, :, dx - 1], x[i, :, :, 1])
    assert len(offsets) == (2 * p + 1) ** 2


@pytest.mark.parametrize("augment", [Augment(flip=True, translate=2), Augment(flip=True), Augment(translate=3),
                                     Augment(flip=True, translate=1, rotation=10)], ids=str)
@pytest.mark.parametrize("rows", [None, slice(1, None, 2)], ids=["one process", "rank 1 of 2"])
def test_training_batch_is_bit_for_bit_the_float_path(augment, rows):
    """Flips and translation done as one gather on the uint8 pixels give exactly the batch (and
    leave the generator exactly where) scaling to floats and augmenting them would."""
    from harness.data.augment import training_batch
    from harness.data.tensors import model_input

    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    part = images if rows is None else images[rows]
    total = None if rows is None else len(images)
    to_nhwc = lambda x: x.contiguous(memory_format=torch.channels_last)  # noqa: E731
    first, second = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    expected = to_nhwc(augment_batch(model_input(part, 8), augment, first, rows, total))
    got = training_batch(part, 8, augment, second, None if rows is None else (rows, total), layout=to_nhwc)
    assert torch.equal(got, expected) and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(first.get_state(), second.get_state())


@pytest.mark.parametrize("augment", [Augment(flip=True, translate=2), Augment(flip=True, translate=1, rotation=10,
                                                                               zoom=0.1, shift=0.1)], ids=str)
def test_rank_1_of_2_gets_rows_1_2_of_the_batch_one_process_draws(augment):
    """Data parallelism promises the global batch one process would train on: the second of two
    processes augments its rows exactly as a single process augments rows 1::2 of the whole batch."""
    from harness.data.augment import training_batch

    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    alone, rank1 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    whole = training_batch(images, 8, augment, alone)
    part = training_batch(images[1::2], 8, augment, rank1, (slice(1, None, 2), len(images)))
    assert torch.equal(part, whole[1::2])
    assert torch.equal(alone.get_state(), rank1.get_state())  # the next batch is drawn alike too


@pytest.mark.parametrize("source, size", [((32, 32), 160), ((32, 32), 64), ((32, 32), 75), ((64, 48), 32)],
                         ids=["32->160", "32->64", "32->75", "64x48->32"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_resize_matches_interpolate_and_writes_the_layout_asked_for(source, size, channels_last):
    import torch.nn.functional as F

    from harness.data.tensors import resize

    x = torch.rand(5, 3, *source, generator=gen())
    out = resize(x, size, channels_last)
    expected = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    assert out.shape == expected.shape and torch.allclose(out, expected, atol=1e-5)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    assert out.is_contiguous(memory_format=layout)


@pytest.mark.parametrize("source_layout", [torch.contiguous_format, torch.channels_last], ids=["from NCHW", "from NHWC"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "NHWC"])
def test_model_input_at_its_size_is_the_scaled_pixels_in_the_layout_asked_for(source_layout, channels_last):
    from harness.data.tensors import model_input

    pixels = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8, generator=gen())
    out = model_input(pixels.contiguous(memory_format=source_layout), 16, channels_last)
    assert out.dtype == torch.float32 and torch.equal(out, pixels.float() / 255)
    # channels-last when asked, else the input's own layout kept
    layout = torch.channels_last if channels_last else source_layout
    assert out.is_contiguous(memory_format=layout)


def test_affine_grid_matches_torch():
    import torch.nn.functional as F

    from harness.data.augment import affine_grid

    theta = torch.randn(6, 2, 3, generator=gen())
    for height, width in ((160, 160), (20, 30)):
        expected = F.affine_grid(theta, [6, 3, height, width], align_corners=False)
        assert torch.allclose(affine_grid(theta, height, width), expected, atol=1e-6)


def test_transform_and_resize_in_one_sampling():
    """With a size, ``apply`` samples the small source once: at zero strength that is exactly the
    evaluation's resize (so augmented training inputs are no blurrier than test inputs), and for a
    whole scale factor (32 -> 160 px) any transform gives what resizing first and then
    transforming gives."""
    import torch.nn.functional as F

    from harness.data.augment import apply
    from harness.data.tensors import resize

    x = torch.rand(4, 3, 32, 32, generator=gen())
    for size in (64, 75, 160):
        assert torch.allclose(apply(x, transforms_of(4), size=size), resize(x, size), atol=1e-5)
    moved = transforms_of(4, angle=12.0, scale=1.1, shift_x=0.05, shift_y=-0.1, flip=True)
    large = F.interpolate(x, size=(160, 160), mode="bilinear", align_corners=False)
    assert torch.allclose(apply(x, moved, size=160), apply(large, moved), atol=1e-5)


def transforms_of(n, **fields):
    from harness.data.augment import Transforms

    defaults = {"flip": False, "angle": 0.0, "scale": 1.0, "shift_x": 0.0, "shift_y": 0.0} | fields
    return Transforms(torch.full((n,), defaults["flip"]), *(torch.full((n,), float(defaults[k]))
                                                             for k in ("angle", "scale", "shift_x", "shift_y")))


def test_training_batch_at_another_size_is_the_float_path_resized_in_the_sampling():
    """A transfer model's batch (32 px images, 160 px input): the same draws as augmenting on
    floats, the size reached in the same sampling, and no generator state left behind differently."""
    from harness.data.augment import training_batch

    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=gen(5))
    augment = Augment(rotation=10, flip=True, zoom=0.1, shift=0.1)
    first, second = gen(1), gen(1)
    expected = augment_batch(images.float() / 255, augment, first, size=160)
    got = training_batch(images, 160, augment, second)
    assert got.shape == (6, 3, 160, 160) and torch.equal(got, expected)
    assert torch.equal(first.get_state(), second.get_state())
    plain = training_batch(images, 160, Augment(), gen())
    assert torch.allclose(plain, torch.nn.functional.interpolate(images.float() / 255, size=(160, 160),
                                                                 mode="bilinear", align_corners=False), atol=1e-5)

import pytest
import torch

pytest.importorskip("sklearn")

from diffusers_attr.training import DEFAULT_N_TRAIN, Digits, digits_split, load_digits_dataset


@pytest.fixture(scope="module")
def digits() -> Digits:
    return load_digits_dataset()


def test_shape_range_labels_ids(digits):
    assert digits.images.shape == (1797, 1, 16, 16)
    assert digits.images.dtype == torch.float32
    assert float(digits.images.min()) == -1.0 and float(digits.images.max()) == 1.0
    assert digits.labels.shape == (1797,) and set(digits.labels.tolist()) == set(range(10))
    assert digits.ids[0] == "digits-0000" and digits.ids[-1] == "digits-1796"
    assert len(set(digits.ids)) == len(digits) == 1797
    assert digits.metadata[0] == {"label": int(digits.labels[0])}


def test_size_8_is_the_original_pixels(digits):
    from sklearn.datasets import load_digits

    raw = torch.as_tensor(load_digits().images, dtype=torch.float32)
    small = load_digits_dataset(8)
    assert torch.equal(small.images[:, 0], raw / 16 * 2 - 1)
    # upsampling keeps the picture: block means of the 16x16 image track the 8x8 original
    pooled = torch.nn.functional.avg_pool2d(digits.images, 2)
    assert (pooled - small.images).abs().mean() < 0.15


def test_bicubic_is_clamped():
    x = load_digits_dataset(16, mode="bicubic").images
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0


def test_split_is_deterministic_and_disjoint(digits):
    train, held = digits_split()
    assert len(train) == DEFAULT_N_TRAIN == 1000 and len(held) == 797
    assert train.ids[0] == "digits-0000" and train.ids[-1] == "digits-0999" and held.ids[0] == "digits-1000"
    assert not set(train.ids) & set(held.ids)
    assert set(train.ids) | set(held.ids) == set(digits.ids)
    assert torch.equal(train.images, digits.images[:1000]) and torch.equal(held.images, digits.images[1000:])
    assert torch.equal(held.labels, digits.labels[1000:])
    train2, _ = digits_split(100)
    assert train2.ids == train.ids[:100]
    with pytest.raises(ValueError):
        digits_split(0)


def test_subset(digits):
    sub = digits.subset([5, 2])
    assert sub.ids == ["digits-0005", "digits-0002"]
    assert torch.equal(sub.images[1], digits.images[2])

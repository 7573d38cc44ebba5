"""Training sets from folders of real image files, datasets, and iterables of PIL images or dicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from diffusers_attr.index import AttributionIndex


def pixels(image: Image.Image) -> torch.Tensor:
    """Independent reference: RGB, x / 127.5 - 1, [C, H, W]."""
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.float64) / 127.5 - 1).permute(2, 0, 1).float()


def test_folder_ids_labels_captions_and_pixels(digits_folder):
    index = AttributionIndex.from_images(digits_folder, progress=False)
    assert index.ids == [f"{label}/img_{k:02d}.png" for label in "012" for k in range(4)]
    assert [m["label"] for m in index.metadata] == [label for label in "012" for _ in range(4)]
    assert index.metadata[0]["caption"] == "a handwritten zero"
    assert all("caption" not in m for m in index.metadata[1:])
    assert index.metadata[5]["source"] == "1/img_01.png"  # relative to the indexed folder: no machine path
    assert index.item_shape == (3, 8, 8)
    expected = torch.stack([pixels(Image.open(digits_folder / item_id)) for item_id in index.ids])
    torch.testing.assert_close(index[:], expected, rtol=0, atol=1e-6)
    assert index.space["resolution"] == [8, 8] and index.space["kind"] == "pixel"


def test_folder_without_subfolders_has_no_labels(tmp_path, digit_images):
    for n, image in enumerate(digit_images[:3]):
        image.save(tmp_path / f"{n}.png")
    index = AttributionIndex.from_images(tmp_path, progress=False, channels=1)
    assert index.ids == ["0.png", "1.png", "2.png"]
    assert all("label" not in m for m in index.metadata)
    assert index.item_shape == (1, 8, 8)


def test_unreadable_files_are_skipped_with_one_warning(digits_folder):
    (digits_folder / "notes.md").write_text("not an image")
    good = (digits_folder / "2" / "img_00.png").read_bytes()
    (digits_folder / "2" / "broken.png").write_bytes(good[: len(good) // 2])
    (digits_folder / "1" / "fake.jpg").write_bytes(b"this is text")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = AttributionIndex.from_images(digits_folder, progress=False)
    messages = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(messages) == 1
    for name in ("notes.md", "2/broken.png", "1/fake.jpg"):
        assert name in messages[0]
    assert len(index) == 12 and "2/broken.png" not in index.ids


def test_strict_raises_on_unreadable_files(digits_folder):
    (digits_folder / "2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"2/broken.png is not a readable image.*strict=False"):
        AttributionIndex.from_images(digits_folder, progress=False, strict=True)
    (digits_folder / "2" / "broken.png").unlink()
    (digits_folder / "notes.md").write_text("not an image")
    with pytest.raises(ValueError, match="notes.md"):
        AttributionIndex.from_images(digits_folder, progress=False, strict=True)


def test_missing_and_imageless_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AttributionIndex.from_images(tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"no image files.*empty"):
        AttributionIndex.from_images(tmp_path / "empty", progress=False)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "readme.md").write_text("hi")
    with pytest.raises(ValueError, match=r"no image files.*readme.md"):
        AttributionIndex.from_images(tmp_path / "text", progress=False)


def test_folder_of_only_corrupt_images_is_empty(tmp_path):
    (tmp_path / "a.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(ValueError, match="empty"):
        AttributionIndex.from_images(tmp_path, progress=False)


def test_user_ids_and_metadata_follow_files_in_order(digits_folder):
    ids = [f"train-{n}" for n in range(12)]
    metadata = [{"license": "CC0", "label": "override"} if n == 0 else {} for n in range(12)]
    index = AttributionIndex.from_images(digits_folder, ids=ids, metadata=metadata, progress=False)
    assert index.ids == ids
    assert index.metadata[0]["license"] == "CC0" and index.metadata[0]["label"] == "override"
    assert index.metadata[0]["caption"] == "a handwritten zero"
    with pytest.raises(ValueError, match="ids has 11 entries but the training set has 12"):
        AttributionIndex.from_images(digits_folder, ids=ids[:11], progress=False)


def test_datasets_dataset(digits):
    import datasets

    arrays, labels = digits
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(names=[str(d) for d in range(10)]),
            "text": datasets.Value("string"),
        }
    )
    rows = {
        "image": [Image.fromarray(a, mode="L") for a in arrays[:6]],
        "label": [int(v) for v in labels[:6]],
        "text": [f"digit {v}" for v in labels[:6]],
    }
    dataset = datasets.Dataset.from_dict(rows, features=features)
    index = AttributionIndex.from_images(dataset, progress=False)
    assert index.ids == [str(n) for n in range(6)]
    assert index.metadata == [{"label": str(v), "text": f"digit {v}"} for v in labels[:6]]
    expected = torch.stack([pixels(image) for image in rows["image"]])
    torch.testing.assert_close(index[:], expected, rtol=0, atol=1e-6)


def test_dataset_without_image_column():
    import datasets

    with pytest.raises(ValueError, match="exactly one image column"):
        AttributionIndex.from_images(datasets.Dataset.from_dict({"x": [1, 2]}), progress=False)


def test_iterable_of_dicts_and_generators(digit_images):
    records = (
        {"image": image, "caption": f"c{n}", "score": np.float32(0.5)} for n, image in enumerate(digit_images[:4])
    )
    index = AttributionIndex.from_images(records, progress=False)
    assert index.ids == ["0", "1", "2", "3"]
    assert index.metadata[2] == {"caption": "c2", "score": 0.5}
    with pytest.raises(ValueError, match="ids has 2 entries but the training set has more"):
        AttributionIndex.from_images(iter(digit_images[:4]), ids=["a", "b"], progress=False)
    with pytest.raises(ValueError, match="empty"):
        AttributionIndex.from_images(iter([]), progress=False)
    with pytest.raises(ValueError, match="empty"):
        AttributionIndex.from_images([], progress=False)


def test_non_images_in_an_iterable(digit_images):
    with pytest.raises(TypeError, match=r"images\[1\] is a str; expected a PIL image"):
        AttributionIndex.from_images([digit_images[0], "cat.png"], progress=False)
    with pytest.raises(ValueError, match="without an 'image' key"):
        AttributionIndex.from_images([{"img": digit_images[0]}], progress=False)


def test_the_builtin_digits_by_name(tmp_path):
    """``AttributionIndex.build(path, "sklearn-digits")`` takes what ``index build sklearn-digits`` takes."""
    from diffusers_attr.cli.index_cmd import DIGITS
    from diffusers_attr.index.sources import DIGITS as SOURCE_NAME
    from diffusers_attr.training.digits import digits_training_set

    assert DIGITS == SOURCE_NAME == "sklearn-digits"
    index = AttributionIndex.build(tmp_path / "digits", "sklearn-digits", progress=False)
    images, ids, metadata = digits_training_set()
    assert len(index) == 1000 and index.item_shape == (1, 16, 16) and index.ids == ids
    assert index.metadata[3] == metadata[3] and metadata[3]["licence"] == "BSD-3-Clause"
    assert torch.equal(index[:], images)
    mine = AttributionIndex.from_images("sklearn-digits", metadata=[{"split": "train"}] * 1000, progress=False)
    assert mine.metadata[0] == metadata[0] | {"split": "train"}

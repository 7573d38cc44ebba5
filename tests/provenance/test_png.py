import pytest
from PIL import Image

from diffusers_attr.provenance import (
    DIGITAL_SOURCE_TYPE,
    read_attribution,
    sidecar_path,
    write_png,
    write_sidecar,
)


def test_png_round_trip_with_compressed_itxt_and_iptc_source_type(tmp_path):
    metadata = {"top": [{"id": "digits-0001", "share": 0.25}], "note": "ünïcode"}
    path = write_png(Image.new("RGB", (8, 8), "red"), tmp_path / "a.png", metadata)
    assert read_attribution(path) == metadata
    raw = path.read_bytes()
    assert b"iTXt" in raw and b"diffusers_attr\x00\x01" in raw  # compression flag set
    with Image.open(path) as image:
        assert DIGITAL_SOURCE_TYPE in image.text["XML:com.adobe.xmp"]
    assert not list(tmp_path.glob("*.partial"))


def test_sidecar_is_read_when_the_png_has_no_chunk(tmp_path):
    path = tmp_path / "b.png"
    Image.new("L", (4, 4)).save(path)
    write_sidecar(sidecar_path(path), {"x": 1})
    assert sidecar_path(path).name == "b.attribution.json"
    assert read_attribution(path) == {"x": 1}
    assert read_attribution(sidecar_path(path)) == {"x": 1}


def test_image_without_metadata_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("L", (4, 4)).save(path)
    with pytest.raises(ValueError, match="carries no diffusers-attr metadata"):
        read_attribution(path)
    with pytest.raises(FileNotFoundError):
        read_attribution(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        read_attribution(tmp_path / "junk.png")

"""Strict JSON: nothing non-JSON written, nothing nested without bound read."""

import json

import pytest
from PIL import Image

from diffusers_attr.jsonio import MAX_DEPTH, dumps, loads
from diffusers_attr.provenance import read_attribution, write_sidecar
from diffusers_attr.provenance.png import write_png


def test_dumps_names_the_non_finite_field():
    with pytest.raises(ValueError, match=r"\['top'\]\[1\]\['score'\]=nan"):
        dumps({"top": [{"score": 1.0}, {"score": float("nan")}]})
    assert json.loads(dumps({"a": [1.5, 2]})) == {"a": [1.5, 2]}


def test_loads_refuses_deep_nesting_and_nan_but_ignores_brackets_in_strings():
    with pytest.raises(ValueError, match="nested more than"):
        loads("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="NaN is not a JSON number"):
        loads('{"score": NaN}')
    deep_but_fine = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads(deep_but_fine) is not None
    assert loads('{"id": "[[[[' + "[" * 200 + '"}')["id"].startswith("[")


def test_a_nan_result_is_not_written_at_all(tmp_path):
    bad = {"format": "diffusers-attr", "top": [{"score": float("inf")}]}
    with pytest.raises(ValueError, match="not JSON"):
        write_sidecar(tmp_path / "a.attribution.json", bad)
    with pytest.raises(ValueError, match="not JSON"):
        write_png(Image.new("RGB", (4, 4)), tmp_path / "a.png", bad)
    assert list(tmp_path.iterdir()) == []


def test_a_deeply_nested_sidecar_is_a_value_error_not_a_recursion_error(tmp_path):
    path = tmp_path / "x.attribution.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="nested more than"):
        read_attribution(path)

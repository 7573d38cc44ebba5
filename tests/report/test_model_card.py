"""The Hugging Face model card: written new, updated in place (other sections and YAML keys survive),
loads back with ``ModelCard.load``."""

from __future__ import annotations

import copy

import pytest
from huggingface_hub import ModelCard

from diffusers_attr.report import aggregate, write_model_card
from diffusers_attr.report.model_card import BEGIN, END

from .conftest import result

EXISTING = """---
license: apache-2.0
library_name: diffusers
tags:
- unconditional-image-generation
- digits
datasets:
- sklearn-digits
base_model: none/none
custom_key:
  nested: [1, 2, 3]
  note: keep me
---

# Digits DDPM

A small DDPM trained on 8x8 digits.

## Training

Trained for 3500 steps with | pipes | and *emphasis* in the text.

## Evaluation

FID is not meaningful at this size.
"""


def _sections(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#")]


def test_update_keeps_other_sections_and_yaml_keys(tmp_path, handbuilt_results):
    path = tmp_path / "README.md"
    path.write_text(EXISTING, encoding="utf-8")
    summary = aggregate(handbuilt_results)
    assert write_model_card(summary, path) == path

    card = ModelCard.load(path)
    data = card.data.to_dict()
    original = ModelCard(EXISTING).data.to_dict()
    for key, value in original.items():
        assert data[key] == value, key
    block = data["attribution"]
    assert block["outputs"] == 4 and block["basis"] == "top-k" and block["top_k"] == 2
    assert block["index"]["items"] == 6 and block["index"]["ids_sha256"] == "a" * 64
    assert block["coverage"] == {"50%": 2, "90%": None}
    assert [item["id"] for item in block["top_items"]] == ["item0", "item3", "item1", "item2"]
    assert block["top_items"][0] == {"id": "item0", "share": 0.3, "top_source_of": 3, "label": 0}
    assert block["near_copies"]["flagged"] == 0 and block["near_copies"]["candidates"] == 1

    text = card.text
    # the original sections are there, unchanged, before the attribution section
    original_body = ModelCard(EXISTING).text
    assert text.startswith(original_body.rstrip("\n"))
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    section = text[text.index(BEGIN): text.index(END)]
    for heading in ("## Training-data attribution", "### Summary", "### Top training items", "### Near-copies",
                    "### Breakdowns", "### Per noise level", "### Method, configuration and limits"):
        assert heading in section
    assert "| 1 | item0 | 0 | CC0-1.0 | alice | 30.0% | 3 | 3 | 50.0% (result-1) |" in section
    assert "mass outside the top-K of each output" in section
    assert "No output was flagged among 4" in section
    assert "had one dominant item but could not be checked fully" in section


def test_second_update_replaces_the_section_in_place(tmp_path, handbuilt_results):
    path = tmp_path / "README.md"
    path.write_text(EXISTING + "\n## Citation\n\nCite us.\n", encoding="utf-8")
    write_model_card(aggregate(handbuilt_results), path)
    first = path.read_text(encoding="utf-8")
    # a user edits the card after the report: move our section above Citation by hand, edit elsewhere
    begin, end = first.index(BEGIN), first.index(END) + len(END)
    ours = first[begin:end]
    rest = (first[:begin] + first[end:]).replace("## Citation", ours + "\n\n## Citation").replace("Cite us.", "Cite us, please.")
    path.write_text(rest, encoding="utf-8")

    more = handbuilt_results + [copy.deepcopy(result([(4, 0.7, 1.0), (5, 0.1, 1.0)]))]
    write_model_card(aggregate(more), path)
    second = path.read_text(encoding="utf-8")
    assert second.count(BEGIN) == 1 and second.count(END) == 1
    assert second.index(END) < second.index("## Citation")  # stays where the user put it
    assert "Cite us, please." in second and "Trained for 3500 steps with | pipes |" in second
    assert _sections(second) == _sections(rest)
    assert ModelCard.load(path).data.attribution["outputs"] == 5
    assert "from 5 generated images" in second and "from 4 generated images" not in second


def test_new_card_and_bad_paths(tmp_path, handbuilt_results):
    summary = aggregate(handbuilt_results)
    path = write_model_card(summary, tmp_path / "model" / "README.md")
    card = ModelCard.load(path)
    assert card.data.library_name == "diffusers" and card.data.attribution["outputs"] == 4
    assert BEGIN in card.text
    with pytest.raises(ValueError, match="is a folder"):
        write_model_card(summary, tmp_path)


def test_ids_and_metadata_are_escaped_in_markdown(tmp_path, handbuilt_results):
    evil = copy.deepcopy(handbuilt_results)
    evil[0]["top"][0]["id"] = "a|b <script>alert(1)</script> *x*"
    evil[0]["top"][0]["metadata"]["label"] = "l|1\nnew line"
    path = write_model_card(aggregate(evil), tmp_path / "README.md")
    text = ModelCard.load(path).text  # the markdown (the YAML holds the raw id as data)
    assert "<script>" not in text
    assert "a\\|b \\<script\\>alert(1)\\</script\\> \\*x\\*" in text
    rows = [line for line in text.splitlines() if "a\\|b" in line and line.startswith("| 1 |")]
    assert rows and rows[0].count(" | ") == 8  # nine cells: the id's pipe did not add one
    assert ModelCard.load(path).data.attribution["top_items"][0]["id"] == "a|b <script>alert(1)</script> *x*"

"""``diffusers-attr report``: model card, HTML and JSON from run folders; exit codes on bad input."""

from __future__ import annotations

import json

from huggingface_hub import ModelCard

from diffusers_attr.cli import main

from .conftest import FINGERPRINT, OUTPUTS, result


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_error(code: int, err: str, message: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("diffusers-attr: error:") and message in lines[0], err


def test_report_writes_card_html_and_json(planted_copy, tmp_path, capsys):
    card = tmp_path / "model" / "README.md"
    card.parent.mkdir()
    card.write_text("---\nlicense: mit\ntags:\n- digits\n---\n\n# My model\n\nHand-written text.\n", encoding="utf-8")
    (planted_copy / "image-005.attribution.json").write_text("{ not json")
    code, out, err = run(capsys, "report", planted_copy, "--card", card, "--html", tmp_path / "report.html",
                         "--json", tmp_path / "summary.json", "--top", "5")
    assert code == 0, err
    assert "10 outputs aggregated (top-k shares" in out
    assert "near-copies flagged: 2" in out and "planted-exact" in out and "planted-shifted" in out
    assert "skipped 1 file(s)" in out and "image-005.attribution.json" in out
    loaded = ModelCard.load(card)
    assert loaded.data.license == "mit" and loaded.data.tags == ["digits"]
    assert loaded.data.attribution["near_copies"]["flagged"] == 2
    assert "Hand-written text." in loaded.text and "### Top training items" in loaded.text
    table = loaded.text.split("### Top training items")[1].split("###")[0]
    assert [line.split(" | ")[0] for line in table.splitlines() if line[:3] in {f"| {k}" for k in range(10)}] == [
        f"| {k}" for k in range(1, 6)
    ]  # --top 5 rows
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count('class="flag"') == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["outputs"] == 10 and len([e for e in summary["near_copies"] if e["status"] == "flagged"]) == 2
    assert summary["skipped"][0]["path"].endswith("image-005.attribution.json")


def test_bad_input_is_one_line_exit_2(tmp_path, capsys, handbuilt_results, write_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing")
    code, _, err = run(capsys, "report", empty, "--html", tmp_path / "r.html")
    assert_clean_error(code, err, "no attribution results in")
    assert not (tmp_path / "r.html").exists()

    code, _, err = run(capsys, "report", tmp_path / "missing")
    assert_clean_error(code, err, "does not exist")

    a, b = tmp_path / "a", tmp_path / "b"
    write_folder(a, handbuilt_results)
    write_folder(b, [result(OUTPUTS["o1"], fingerprint=FINGERPRINT | {"items": 9, "ids_sha256": "c" * 64})])
    code, _, err = run(capsys, "report", a, b)
    assert_clean_error(code, err, "results from different indexes cannot be aggregated together")
    assert "--allow-mixed-indexes" in err
    code, out, err = run(capsys, "report", a, b, "--allow-mixed-indexes")
    assert code == 0, err
    assert "5 outputs aggregated" in out

    code, _, err = run(capsys, "report", a, "--near-copy-share", "2")
    assert_clean_error(code, err, "min_share=2.0 must be a number in [0, 1]")
    code, _, err = run(capsys, "report", a, "--top", "0")
    assert_clean_error(code, err, "--top=0 must be a positive integer")

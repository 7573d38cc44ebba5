"""Write the aggregate attribution into a Hugging Face model card (``README.md``), in place.

The card is read and written with ``huggingface_hub.ModelCard``: its YAML metadata keeps every key it
had and gains (or replaces) an ``attribution`` block; its markdown keeps every section it had and gains
(or replaces) one section between the markers ``<!-- diffusers-attr:attribution:begin -->`` and
``<!-- diffusers-attr:attribution:end -->``. Running the report again replaces only that block and
that section.
"""

from __future__ import annotations

import json
import math
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._version import __version__
from .aggregate import AttributionSummary, ItemStats
from .formatting import percent, ratio, write_text_atomic

BEGIN = "<!-- diffusers-attr:attribution:begin -->"
END = "<!-- diffusers-attr:attribution:end -->"
YAML_KEY = "attribution"
METHOD = "nonparametric data attribution (NDA; Zhao et al., arXiv 2510.14269)"
_NEW_CARD = """---
library_name: diffusers
---

# Model card

"""


def card_metadata(summary: AttributionSummary, *, items: int = 10, flags: int = 20) -> dict[str, Any]:
    """The ``attribution`` block of the card's YAML metadata: a compact, machine-readable summary."""
    block: dict[str, Any] = {
        "method": METHOD,
        "tool": f"diffusers-attr {__version__}",
        "generated": datetime.now(timezone.utc).date().isoformat(),
        "outputs": summary.outputs,
        "basis": summary.basis,
        "top_k": _top_k_value(summary),
        "listed_mass": _round(summary.listed_mass),
        "index": _index_blocks(summary),
        "coverage": {key: value for key, value in summary.coverage.items()},
        "coverage_of_listed_mass": {key: value for key, value in summary.coverage_listed.items()},
        "concentration": {key: _round(value) for key, value in summary.concentration.items()},
        "top_items": [
            {"id": item.id, "share": _round(item.mean_share), "top_source_of": item.top1}
            | ({"label": item.metadata["label"]} if _scalar(item.metadata.get("label")) else {})
            for item in summary.items[:items]
        ],
    }
    if summary.thresholds is not None:
        flagged = summary.flags
        block["near_copies"] = {
            "flagged": len(flagged),
            "candidates": len(summary.candidates),
            "thresholds": summary.thresholds.to_dict(),
            "outputs": [
                {"output": Path(e.output).name, "item": e.item_id, "share": _round(e.share),
                 "alignment": _round(e.alignment), "distance": _round(e.distance)}
                for e in flagged[:flags]
            ],
        }
    if summary.skipped:
        block["skipped_files"] = len(summary.skipped)
    return block


def card_section(summary: AttributionSummary, *, items: int = 20, rows: int = 15) -> str:
    """The markdown section (with its markers) that :func:`write_model_card` puts into the card."""
    lines = [BEGIN, "## Training-data attribution", ""]
    lines.append(
        f"*Written by diffusers-attr {__version__} on {datetime.now(timezone.utc).date().isoformat()} from "
        f"{summary.outputs_noun} with {METHOD}. Running `diffusers-attr report` again replaces "
        "this section and the `attribution` block of the metadata; the rest of the card is left as it is.*"
    )
    lines += ["", "### Summary", ""]
    lines += [f"- {sentence}" for sentence in summary_sentences(summary, esc=_md)]
    lines += ["", "### Top training items", ""]
    lines.append(
        "Share: the item's share of the patch mass of all outputs (each output's mass is 1). Top source of: "
        "outputs whose largest share it has. Listed in: outputs whose top items include it."
    )
    lines.append("")
    extra = _table_fields(summary.items[:items])
    header = ["#", "training item", *extra, "share", "top source of", "listed in", "largest share (output)"]
    lines.append(_row(header))
    lines.append(_row(["---:", "---", *["---"] * len(extra), "---:", "---:", "---:", "---"]))
    for rank, item in enumerate(summary.items[:items], start=1):
        largest = f"{percent(item.max_share)} ({Path(item.max_output).name})" if item.max_output else percent(item.max_share)
        lines.append(_row([
            str(rank), _md(item.id), *[_md(_text(item.metadata.get(f))) for f in extra], percent(item.mean_share),
            f"{item.top1:,}", f"{item.listed:,}", _md(largest),
        ]))
    if len(summary.items) > items:
        lines.append("")
        lines.append(f"{summary.items_seen - items:,} more items carry some share; the HTML report lists more.")

    lines += ["", "### Near-copies (memorization flags)", ""]
    lines += _flag_lines(summary, rows)

    if summary.breakdowns:
        lines += ["", "### Breakdowns", ""]
        lines.append("Each row: the items with that value, their share of all outputs' mass, how many such items "
                     "carry mass, and how many outputs have one of them as top source.")
        for name, table in summary.breakdowns.items():
            lines += ["", f"**By {_md(name)}**", "", _row([_md(name), "share", "items", "top source of"]),
                      _row(["---", "---:", "---:", "---:"])]
            for row in table[:rows]:
                lines.append(_row([_md(row.value), percent(row.share), f"{row.items:,}", f"{row.top1:,}"]))
            if len(table) > rows:
                rest = table[rows:]
                lines.append(_row([f"({len(rest)} more values)", percent(sum(r.share for r in rest)),
                                   f"{sum(r.items for r in rest):,}", f"{sum(r.top1 for r in rest):,}"]))
            if summary.outside_mass > 1e-9:
                lines.append(_row(["(outside the top-K of each output)", percent(summary.outside_mass), "", ""]))

    if summary.levels:
        lines += ["", "### Per noise level", ""]
        lines.append(
            "Each output is attributed at several noise levels (nu = sigma / sqrt(alpha^2 + sigma^2)). High noise "
            "decides coarse structure (layout, shape), low noise fine detail (strokes, texture); a model that copies "
            "concentrates on few items at low noise."
        )
        lines += ["", _row(["level", "noise nu", "outputs", "effective items", "listed mass", "top items (share)"]),
                  _row(["---:", "---:", "---:", "---:", "---:", "---"])]
        for level in summary.levels:
            kind = "finest" if level.position == 0 else ("coarsest" if level.position == len(summary.levels) - 1 else "")
            top = ", ".join(f"{_md(i)} ({percent(s)})" for i, s in level.top[:3])
            lines.append(_row([f"{level.position + 1}{' (' + kind + ')' if kind else ''}", f"{level.noise:.2f}",
                               f"{level.outputs:,}", f"{level.effective_items:,.1f}", percent(level.listed_mass), top]))

    lines += ["", "### Method, configuration and limits", ""]
    lines += [f"- {sentence}" for sentence in method_sentences(summary, esc=_md, code=_code_span)]
    if summary.skipped:
        lines += ["", f"**Skipped files ({len(summary.skipped)}).** Not aggregated:", ""]
        for skipped in summary.skipped[:rows]:
            lines.append(f"- `{_code(str(skipped.path))}`: {_md(skipped.reason)}")
        if len(summary.skipped) > rows:
            lines.append(f"- ... and {len(summary.skipped) - rows} more (listed in the HTML report)")
    lines += ["", END]
    return "\n".join(lines)


def summary_sentences(summary: AttributionSummary, *, esc=str) -> list[str]:
    """The plain-language summary shared by the card and the HTML report (``esc`` escapes the values
    that come from the results: ids, model names, file names)."""
    out = []
    indexes = "; ".join(_index_text(entry["fingerprint"]) for entry in summary.indexes)
    models = esc(", ".join(summary.models))
    out.append(f"{summary.outputs:,} outputs of {models} attributed against {indexes}.")
    cov = summary.coverage
    if summary.basis == "top-k":
        out.append(
            f"Shares come from the top {_top_k_value(summary)} items listed per output: they carry "
            f"{percent(summary.listed_mass)} of the patch mass; the other {percent(summary.outside_mass)} is mass outside the "
            "top-K of each output, spread over the rest of the training set and not attributed to items here."
        )
    elif summary.basis == "mixed":
        out.append(
            f"{summary.outputs_full:,} outputs contributed full scores over the index, the others their top items "
            f"only; listed items carry {percent(summary.listed_mass)} of the mass."
        )
    reached = [f"{key} of the mass from {value:,} items" for key, value in cov.items() if value is not None]
    if reached:
        out.append(f"Coverage: {' and '.join(reached)} (of {summary.index_items:,} in the index).")
    listed = summary.coverage_listed
    if summary.basis != "full" and all(v is not None for v in listed.values()):
        out.append(
            "Within the listed mass: " + " and ".join(f"{key} from {value:,} items" for key, value in listed.items()) + "."
        )
    c = summary.concentration
    if c.get("entropy_bits") is not None:
        normalised = f", {c['normalised_entropy']:.2f} of the maximum" if c.get("normalised_entropy") is not None else ""
        out.append(
            f"Concentration: entropy {c['entropy_bits']:.2f} bits{normalised}, effective number of items "
            f"{c['effective_items']:,.1f}, Gini {c['gini']:.2f}"
            + (" (over the listed mass; items outside the top-K count 0)." if summary.basis != "full" else ".")
        )
    if summary.items:
        first = summary.items[0]
        out.append(
            f"{c.get('distinct_top1', 0):,} distinct training items are the top source of at least one output; the "
            f"largest share overall is {esc(first.id)} ({percent(first.mean_share)} of all mass, top source of {_outputs(first.top1)})."
        )
    if summary.thresholds is None:
        out.append("Near-copy flags were not computed.")
    else:
        flagged = summary.flags
        text = f"Near-copies: {len(flagged):,} output{'s' if len(flagged) != 1 else ''} flagged"
        if flagged:
            text += " (" + ", ".join(f"{esc(Path(e.output).name)} of {esc(e.item_id)}" for e in flagged[:5]) + (", ..." if len(flagged) > 5 else "") + ")"
        if summary.candidates:
            text += f"; {len(summary.candidates):,} more dominated by one item but could not be checked fully"
        out.append(text + ".")
    if summary.skipped:
        count = len(summary.skipped)
        out.append(f"{count:,} file{'s' if count != 1 else ''} could not be used and {'were' if count != 1 else 'was'} skipped (listed below).")
    return out


def method_sentences(summary: AttributionSummary, *, esc=str, code=str) -> list[str]:
    """Configuration and limits of the method, for the card and the HTML report (``esc`` escapes values
    from the results, ``code`` marks code)."""
    configs = []
    for text, count in list(summary.configs.items())[:3]:
        config = json.loads(text)
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in config.items() if v is not None)
        configs.append(code(shown) + (f" ({count:,} outputs)" if len(summary.configs) > 1 else ""))
    out = [
        ("Attribution settings: " + "; ".join(configs)
         + (f"; and {len(summary.configs) - 3} more" if len(summary.configs) > 3 else "") + "."),
        f"Scheduler: {esc(', '.join(summary.schedulers))}.",
        ("Method: for every patch of the noisy state x_t at a noise level, a softmax over every patch of every training "
         "item of -||x_t patch - alpha * item patch||^2 / (2 sigma^2) (the optimal denoiser of the training set, made "
         "local); an item's score is its total weight, its share the score over the output's total. No gradients, no "
         "retraining."),
    ]
    if summary.basis == "full":
        out.append("Shares were read from the full score arrays (" + code("*.attribution.safetensors") + "): exact for every item.")
    else:
        out.append(
            "Shares were read from the JSON metadata, which lists each output's top items only: an item outside an "
            "output's top-K counts 0 there, so item shares, coverage and concentration describe the listed mass "
            "(lower bounds for items; " + code("--full-scores") + " reads the arrays when they were kept)."
        )
    if summary.thresholds is not None:
        t = summary.thresholds
        out.append(
            f"Near-copy flags need all of: one item carries at least {t.min_share:.0%} of the patch mass at the lowest "
            f"attributed noise level and at least {t.min_ratio:g}x the runner-up; its query map (where in the output) "
            f"and source map (where in the item) align with cosine >= {t.min_alignment:g} at a shift of up to "
            f"{t.max_shift} map pixels; and the output and the item differ by an RMS of at most {t.max_distance:g} "
            "(pixel values in [-1, 1]) at the best shift, compared at the index's resolution (the output resized and "
            "centre-cropped as the index items were). Maps come from the arrays files; without them an output is a "
            "candidate, not a flag. For latent indexes the distance uses the decoded thumbnails (pixels)."
        )
    out.append(
        "Limits: scores describe the optimal denoiser of the indexed training set at the attributed noise levels, not "
        "a causal measurement of what training on an item changed; attribution is only as complete as the index; "
        "near-copy flags catch copies of single items (translated by a few pixels at most), not style imitation or "
        "collages of many items."
    )
    return out


def write_model_card(summary: AttributionSummary, path: str | os.PathLike, *, items: int = 20) -> Path:
    """Write (or update in place) the Hugging Face model card at ``path`` with the aggregate attribution.

    An existing card keeps its YAML keys (``attribution`` is added or replaced) and every markdown section
    (the attribution section between its markers is added at the end or replaced where it is). A new card
    gets a minimal header. The file is written atomically and loads back with ``ModelCard.load(path)``.

    Parameters:
        summary: what :func:`~diffusers_attr.report.aggregate` returned.
        path: the card (``README.md`` of the model repository).
        items: rows of the top-items table.

    Returns:
        The path written.

    Example:
        >>> write_model_card(aggregate("out/run"), "my-model/README.md")  # doctest: +SKIP
    """
    from huggingface_hub import ModelCard

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"card={str(path)!r} is a folder; give the card file, e.g. {path / 'README.md'}")
    text = path.read_text(encoding="utf-8") if path.exists() else _NEW_CARD
    try:
        card = ModelCard(text)
    except ValueError as error:
        raise ValueError(f"{path} is not a model card whose YAML metadata can be read: {error}") from error
    setattr(card.data, YAML_KEY, card_metadata(summary))
    section = card_section(summary, items=items)
    body = card.text
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if pattern.search(body):
        body = pattern.sub(lambda _: section, body, count=1)
    else:
        body = body.rstrip("\n") + ("\n\n" if body.strip() else "") + section + "\n"
    card.text = body
    write_text_atomic(path, str(card))
    return path


# ----------------------------------------------------------------------------------------- helpers


def _flag_lines(summary: AttributionSummary, rows: int) -> list[str]:
    if summary.thresholds is None:
        return ["Not computed for this report."]
    flagged = summary.flags
    lines = []
    if not flagged:
        lines.append(f"No output was flagged among {summary.outputs:,}.")
    else:
        lines.append(
            f"{len(flagged):,} output{'s are' if len(flagged) != 1 else ' is'} flagged as near-copies of a training item. "
            "Each row cites its evidence: the item's share of the finest-level patch mass and its ratio to the runner-up, "
            "the alignment of its query and source maps (and the shift, output = item moved by (dy, dx)), and the "
            "direct pixel distance."
        )
        lines += ["", _row(["output", "training item", "finest-level share", "vs runner-up", "map alignment (shift)",
                            "pixel distance (shift)", "evidence files"]),
                  _row(["---", "---", "---:", "---:", "---:", "---:", "---"])]
        for e in flagged[:rows]:
            lines.append(_row([
                _md(e.output), _md(e.item_id), percent(e.share), ratio(e.ratio),
                f"{e.alignment:.2f} {tuple(e.alignment_shift)}", f"{e.distance:.3f} {tuple(e.distance_shift)}",
                ", ".join(f"`{_code(Path(f).name)}`" for f in e.files),
            ]))
        if len(flagged) > rows:
            lines.append("")
            lines.append(f"... and {len(flagged) - rows:,} more (the HTML report lists all, with pictures).")
    candidates = summary.candidates
    if candidates:
        lines += ["", f"{len(candidates):,} more output{'s' if len(candidates) != 1 else ''} had one dominant item but "
                  "could not be checked fully (not flagged): " + "; ".join(
                      f"{_md(Path(e.output).name)} ({_md(e.item_id)}, {percent(e.share)}: {_md(e.reasons[0])})" for e in candidates[:5]
                  ) + ("; ..." if len(candidates) > 5 else "")]
    cleared = [e for e in summary.near_copies if e.status == "cleared"]
    if cleared:
        lines += ["", f"{len(cleared):,} output{'s' if len(cleared) != 1 else ''} had one dominant item but failed the "
                  "alignment or distance check (not copies): " + "; ".join(
                      f"{_md(Path(e.output).name)} ({_md('; '.join(e.reasons))})" for e in cleared[:5]
                  ) + ("; ..." if len(cleared) > 5 else "")]
    return lines


def _outputs(count: int) -> str:
    return f"{count:,} output" + ("" if count == 1 else "s")


def _table_fields(items: list[ItemStats]) -> list[str]:
    """Metadata columns for the items table: label, licence, source, contributor when present."""
    wanted = ("label", "licence", "license", "source", "contributor")
    return [f for f in wanted if any(_scalar(item.metadata.get(f)) for item in items)][:3]


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float)) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _md(text: Any) -> str:
    """Text safe inside a markdown table cell: one line, markdown and HTML characters escaped."""
    text = " ".join(str(text).split()).replace("&", "&amp;")
    text = text.replace("\\", "\\\\")
    for char in "|*_`[]<>#~":
        text = text.replace(char, "\\" + char)
    return text


def _code_span(text: str) -> str:
    return f"`{_code(text)}`"


def _code(text: str) -> str:
    return " ".join(text.split()).replace("`", "'")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"






def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else (round(value, 6) if abs(value) < 1e6 else value)
    return value


def _top_k_value(summary: AttributionSummary) -> Any:
    keys = sorted(summary.top_k)
    return keys[0] if len(keys) == 1 else keys


def _index_blocks(summary: AttributionSummary) -> Any:
    blocks = []
    for entry in summary.indexes:
        fingerprint = entry["fingerprint"]
        space = fingerprint.get("space") if isinstance(fingerprint.get("space"), dict) else {}
        blocks.append({"items": fingerprint.get("items"), "space": space.get("kind"),
                       "ids_sha256": fingerprint.get("ids_sha256"), "outputs": entry["outputs"]})
    return blocks[0] if len(blocks) == 1 else blocks


def _index_text(fingerprint: dict[str, Any]) -> str:
    space = fingerprint.get("space") if isinstance(fingerprint.get("space"), dict) else {}
    items = fingerprint.get("items")
    text = f"an index of {items:,} training items" if isinstance(items, int) else "an index of unknown size"
    if space.get("kind"):
        text += f" ({space['kind']} space"
        text += f", ids sha256 {str(fingerprint['ids_sha256'])[:12]})" if fingerprint.get("ids_sha256") else ")"
    return text

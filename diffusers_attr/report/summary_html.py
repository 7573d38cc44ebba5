"""The HTML version of the model-card report: one self-contained page for humans.

:func:`write_summary_html` writes the aggregate of many outputs as a single HTML file with every
picture embedded (``data:`` URLs), so it can be moved, mailed or published alone: the summary, the
plots (share distribution, cumulative coverage, per-field bars, concentration per noise level), each
flagged near-copy beside its training item with both heatmaps and the evidence, a sortable table of
the top training items with thumbnails, the breakdowns, the per-noise-level view, the method's
configuration and limits, and the skipped files. No external URL, no server, works from ``file://``.
"""

from __future__ import annotations

import base64
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from .._version import __version__
from . import plots
from .aggregate import AttributionSummary
from .formatting import escape, html_head, percent, ratio, write_text_atomic
from .model_card import _table_fields, method_sentences, summary_sentences
from .near_copy import NearCopyEvidence

HTML_ITEMS = 200
"""Rows of the top-items table."""
HTML_FLAGS = 100
"""Near-copy evidence entries shown with pictures."""
THUMB_SIDE = 64






def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _picture_png(picture: Image.Image, side: int) -> bytes:
    picture = picture.convert("RGB")
    if max(picture.size) > side:
        picture = picture.copy()
        picture.thumbnail((side, side), Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def write_summary_html(summary: AttributionSummary, path: str | os.PathLike, *, title: str | None = None) -> Path:
    """Write the aggregate attribution report as one self-contained HTML file.

    Parameters:
        summary: what :func:`~diffusers_attr.report.aggregate` returned.
        path: the HTML file to write (its folder is created; ``.html`` is added to a name without an
            extension), or an existing folder (the page is then ``attribution-report.html`` inside it,
            next to, never over, a run report's ``index.html``).
        title: the page title (default "Training-data attribution report").

    Returns:
        The path written (atomically).

    Example:
        >>> write_summary_html(aggregate("out/run"), "out/model-report.html")  # doctest: +SKIP
    """
    path = Path(path)
    if path.is_dir():
        path = path / "attribution-report.html"
    elif not path.suffix:
        path = path.with_name(path.name + ".html")
    title = title or "Training-data attribution report"
    page = _page(summary, title)
    write_text_atomic(path, page)
    return path


# ------------------------------------------------------------------------------------------ sections


def _page(summary: AttributionSummary, title: str) -> str:
    indexes = "; ".join(
        f"{entry['fingerprint'].get('items', '?')} items"
        + (f", {entry['fingerprint']['space'].get('kind')} space" if isinstance(entry["fingerprint"].get("space"), dict) else "")
        + f", ids sha256 {str(entry['fingerprint'].get('ids_sha256', '?'))[:12]}"
        + (f" ({entry['outputs']:,} outputs)" if len(summary.indexes) > 1 else "")
        for entry in summary.indexes
    )
    basis = {
        "top-k": f"JSON top-{_top_k(summary)} items per output",
        "full": "full score arrays",
        "mixed": f"full arrays for {summary.outputs_full:,} outputs, top items for the rest",
    }[summary.basis]
    flagged = len(summary.flags) if summary.thresholds is not None else None
    c = summary.concentration
    numbers = [
        ("outputs", f"{summary.outputs:,}"),
        ("items for 50% of the mass", _count(summary.coverage.get("50%"), summary)),
        ("items for 90% of the mass", _count(summary.coverage.get("90%"), summary)),
        ("effective number of items", f"{c['effective_items']:,.1f}" if c.get("effective_items") is not None else "–"),
        ("Gini", f"{c['gini']:.2f}" if c.get("gini") is not None else "–"),
        ("near-copies flagged", "not computed" if flagged is None else f"{flagged:,}"),
    ]
    if summary.basis != "full":
        numbers.insert(1, ("mass in listed items", percent(summary.listed_mass)))
    stats = "".join(
        f'<div class="stat{" alarm" if label == "near-copies flagged" and flagged else ""}"><div class="value">{escape(value)}</div>'
        f'<div class="label">{escape(label)}</div></div>'
        for label, value in numbers
    )
    toc = [("summary", "Summary"), ("plots", "Plots"), ("near-copies", "Near-copies"), ("items", "Top items")]
    if summary.breakdowns:
        toc.append(("breakdowns", "Breakdowns"))
    if summary.levels:
        toc.append(("levels", "Noise levels"))
    toc.append(("method", "Method and limits"))
    if summary.skipped:
        toc.append(("skipped", "Skipped files"))
    nav = "".join(f'<li><a class="chip" href="#{anchor}">{escape(text)}</a></li>' for anchor, text in toc)
    sentences = "".join(f"<li>{escape(sentence)}</li>" for sentence in summary_sentences(summary))
    method = "".join(f"<li>{escape(sentence)}</li>" for sentence in method_sentences(summary))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""{html_head(title, CSS)}
<body>
<header class="page-head"><div class="inner">
<h1>{escape(title)}</h1>
<p class="subtitle">What the model leans on across {escape(summary.outputs_noun)}, whose training data it
reproduces, and which outputs are near-copies of a training item.</p>
<dl class="facts">
<div class="double"><dt>Model</dt><dd>{escape(", ".join(summary.models))}</dd></div>
<div class="double"><dt>Index</dt><dd>{escape(indexes)}</dd></div>
<div><dt>Shares from</dt><dd>{escape(basis)}</dd></div>
<div><dt>Written</dt><dd>{escape(generated)}</dd></div>
<div class="wide"><dt>Aggregated</dt><dd class="mono">{escape(", ".join(summary.sources))}</dd></div>
</dl>
<ul class="chips toc">{nav}</ul>
</div></header>
<main>
<section id="summary" class="panel"><h2>Summary</h2>
<div class="stats">{stats}</div>
<ul class="sentences">{sentences}</ul>
</section>
{_plots_section(summary)}
{_near_copy_section(summary)}
{_items_section(summary)}
{_breakdown_section(summary)}
{_levels_section(summary)}
<section id="method" class="panel"><h2>Method, configuration and limits</h2><ul class="sentences">{method}</ul></section>
{_skipped_section(summary)}
</main>
<footer>Written by diffusers-attr {escape(__version__)}. A self-contained page: every picture is embedded.</footer>
<script>{JS}</script>
</body>
</html>
"""


def _count(value: int | None, summary: AttributionSummary) -> str:
    if value is not None:
        return f"{value:,}"
    return "not reached" if summary.basis == "full" else "unknown (top-K)"


def _top_k(summary: AttributionSummary) -> str:
    return "/".join(str(k) for k in sorted(summary.top_k))


def _plots_section(summary: AttributionSummary) -> str:
    if not plots.have_matplotlib():
        return ('<section id="plots" class="panel"><h2>Plots</h2><p class="note">The plots need matplotlib '
                "(<code>pip install matplotlib</code>); everything else is in the tables below.</p></section>")
    figures = [
        ("Share distribution: how much of each output its top training item carries.", plots.share_distribution(summary)),
        ("Cumulative coverage: how many items carry how much of the mass.", plots.coverage_curve(summary)),
    ]
    for name, rows in list(summary.breakdowns.items())[:3]:
        if len(rows) >= 2 or name == "label":
            figures.append((f"Share of the mass by {name}.", plots.breakdown_bars(summary, name)))
    if len(summary.levels) >= 2:
        figures.append(("Concentration per noise level.", plots.level_profile(summary)))
    body = "".join(
        f'<figure class="plot"><img src="{_data_url(png)}" alt="{escape(caption)}"><figcaption>{escape(caption)}</figcaption></figure>'
        for caption, png in figures
    )
    return f'<section id="plots" class="panel"><h2>Plots</h2><div class="plots">{body}</div></section>'


def _near_copy_section(summary: AttributionSummary) -> str:
    if summary.thresholds is None:
        return '<section id="near-copies" class="panel"><h2>Near-copies</h2><p>Not computed for this report.</p></section>'
    t = summary.thresholds
    rule = (
        f"Flagged when one training item carries at least {t.min_share:.0%} of the patch mass at the lowest attributed "
        f"noise level and {t.min_ratio:g}x the runner-up, its query and source maps align (cosine &ge; {t.min_alignment:g} "
        f"at a shift of up to {t.max_shift} map pixels), and the output and the item differ by an RMS of at most "
        f"{t.max_distance:g} (pixels in [-1, 1]) at the best shift, both at the index's resolution (the output "
        "resized and centre-cropped as the index items were)."
    )
    flagged = summary.flags
    cards = "".join(_flag_card(e) for e in flagged[:HTML_FLAGS])
    if not flagged:
        cards = f'<p class="ok">No output was flagged among {summary.outputs:,}.</p>'
    elif len(flagged) > HTML_FLAGS:
        cards += f"<p>... and {len(flagged) - HTML_FLAGS:,} more flagged outputs (see the JSON summary).</p>"
    others = [e for e in summary.near_copies if not e.flagged]
    table = ""
    if others:
        rows = "".join(
            f"<tr><td>{escape(e.status)}</td><td class=\"mono\">{escape(e.output)}</td><td>{escape(e.item_id)}</td>"
            f"<td data-sort=\"{e.share:.6f}\">{percent(e.share)}</td><td>{escape(ratio(e.ratio))}</td>"
            f"<td>{escape('–' if e.alignment is None else f'{e.alignment:.2f}')}</td>"
            f"<td>{escape('–' if e.distance is None else f'{e.distance:.3f}')}</td><td>{escape('; '.join(e.reasons))}</td></tr>"
            for e in others[:500]
        )
        table = f"""<h3>Dominated by one item, not flagged ({len(others):,})</h3>
<p class="note">Candidates could not be checked fully (no arrays or pixels); cleared outputs failed the alignment or distance check.</p>
<div class="scroll"><table class="sortable"><thead><tr>{_headers(["status", "output", "training item", "finest-level share", "vs runner-up", "alignment", "distance", "why not flagged"])}</tr></thead>
<tbody>{rows}</tbody></table></div>"""
    return f"""<section id="near-copies" class="panel"><h2>Near-copies</h2>
<p class="note">{rule}</p>
{cards}
{table}
</section>"""


def _flag_card(e: NearCopyEvidence) -> str:
    names = {
        "output": "the output (the part attributed)", "source": f"training item {e.item_id}",
        "query_map": "where the output uses it (query map)", "source_map": "which regions of it are used (source map)",
    }
    figures = "".join(
        '<figure><div class="frame">'
        + (f'<img src="{_data_url(e.pictures[key])}" alt="{escape(caption)}">' if key in e.pictures
           else '<p class="missing">not available</p>')
        + f"</div><figcaption>{escape(caption)}</figcaption></figure>"
        for key, caption in names.items()
    )
    evidence = [
        ("finest-level share", f"{percent(e.share)} at nu={e.level:.2f} ("
         + ("no runner-up" if e.ratio == float("inf") else f"{e.ratio:.1f}x the runner-up's {percent(e.runner_up_share)}") + ")"),
        ("map alignment", f"{e.alignment:.3f} at shift (dy, dx) = {tuple(e.alignment_shift)} map pixels"),
        ("pixel distance", f"RMS {e.distance:.4f} at shift {tuple(e.distance_shift)} px ({e.distance_source}"
         + (f"; {e.distance_basis})" if e.distance_basis else ")")),
        ("share of the output", percent(e.output_share)),
        ("evidence files", ", ".join(e.files)),
    ]
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in evidence)
    return f"""<article class="flag">
<h3><span class="badge">near-copy</span> <span class="mono">{escape(e.output)}</span> &larr; {escape(e.item_id)}</h3>
<div class="flag-body"><div class="pictures">{figures}</div><dl class="evidence">{facts}</dl></div>
</article>"""




def _headers(names: list[str], numeric: set[int] | None = None) -> str:
    return "".join(
        f'<th scope="col" aria-sort="none"><button type="button" class="sort">{escape(name)}</button></th>' for name in names
    )


def _items_section(summary: AttributionSummary) -> str:
    items = summary.items[:HTML_ITEMS]
    extra = _table_fields(items)
    levels = summary.levels
    level_names = [f"share at nu={level.noise:.2f}" for level in levels]
    rows = []
    for rank, item in enumerate(items, start=1):
        thumb = summary.thumbnail(item)
        thumb_html = (f'<img src="{_data_url(_picture_png(thumb, THUMB_SIDE))}" alt="">' if thumb is not None
                      else '<span class="missing">–</span>')
        tooltip = "\n".join(f"{k}: {v}" for k, v in item.metadata.items() if v not in (None, ""))
        cells = [
            f'<td data-sort="{rank}">{rank}</td>',
            f'<td class="thumb">{thumb_html}</td>',
            f'<td class="mono" title="{escape(tooltip)}">{escape(item.id)}</td>',
            *[f"<td>{escape(_value(item.metadata.get(f)))}</td>" for f in extra],
            f'<td data-sort="{item.mean_share:.9f}">{percent(item.mean_share)}</td>',
            f'<td data-sort="{item.total_share:.6f}">{item.total_share:,.2f}</td>',
            f'<td data-sort="{item.top1}">{item.top1:,}</td>',
            f'<td data-sort="{item.listed}">{item.listed:,}</td>',
            f'<td data-sort="{item.max_share:.9f}" title="{escape(item.max_output or "")}">{percent(item.max_share)}</td>',
            *[f'<td data-sort="{s:.9f}">{percent(s)}</td>' for s in item.level_shares],
        ]
        if len(summary.indexes) > 1:
            cells.append(f"<td>{item.index_group + 1}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    headers = ["#", "picture", "training item", *extra, "share of all mass", "outputs' worth", "top source of",
               "listed in", "largest share", *level_names]
    if len(summary.indexes) > 1:
        headers.append("index")
    more = ""
    if summary.items_seen > len(items):
        more = f"<p class=\"note\">{summary.items_seen - len(items):,} more items carry some share.</p>"
    return f"""<section id="items" class="panel"><h2>Top training items</h2>
<p class="note">Click a column to sort. Share of all mass: the item's share of the patch mass of all outputs (each
output's mass is 1); outputs' worth: the same as a sum. Largest share: its largest share in one output
(hover for which). Per-level shares: least noisy (fine detail) first.</p>
<div class="scroll"><table class="sortable items-table"><thead><tr>{_headers(headers)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>
{more}
</section>"""


def _value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _breakdown_section(summary: AttributionSummary) -> str:
    if not summary.breakdowns:
        return ""
    blocks = []
    for name, table in summary.breakdowns.items():
        rows = "".join(
            f'<tr><td>{escape(row.value)}</td><td data-sort="{row.share:.9f}">{percent(row.share)}</td>'
            f'<td data-sort="{row.items}">{row.items:,}</td><td data-sort="{row.top1}">{row.top1:,}</td></tr>'
            for row in table[:200]
        )
        if summary.outside_mass > 1e-9:
            rows += f'<tr class="outside"><td>(outside the top-K of each output)</td><td data-sort="-1">{percent(summary.outside_mass)}</td><td data-sort="-1"></td><td data-sort="-1"></td></tr>'
        blocks.append(f"""<div class="breakdown"><h3>By {escape(name)}</h3>
<table class="sortable"><thead><tr>{_headers([name, "share of all mass", "items", "top source of"])}</tr></thead>
<tbody>{rows}</tbody></table></div>""")
    return f'<section id="breakdowns" class="panel"><h2>Breakdowns</h2><div class="breakdowns">{"".join(blocks)}</div></section>'


def _levels_section(summary: AttributionSummary) -> str:
    if not summary.levels:
        return ""
    rows = "".join(
        f"<tr><td>{level.position + 1}</td><td>{level.noise:.3f}</td><td>{level.outputs:,}</td>"
        f"<td>{level.effective_items:,.1f}</td><td>{percent(level.listed_mass)}</td>"
        f"<td>{escape(', '.join(f'{i} ({percent(s)})' for i, s in level.top[:5]))}</td></tr>"
        for level in summary.levels
    )
    return f"""<section id="levels" class="panel"><h2>Per noise level</h2>
<p class="note">High noise decides coarse structure, low noise fine detail. Few effective items at low noise mean
the outputs copy details from few training items.</p>
<table><thead><tr><th>level</th><th>noise nu</th><th>outputs</th><th>effective items</th><th>listed mass</th>
<th>top items (mean share)</th></tr></thead><tbody>{rows}</tbody></table>
</section>"""


def _skipped_section(summary: AttributionSummary) -> str:
    if not summary.skipped:
        return ""
    rows = "".join(f"<li><code>{escape(item.path)}</code>: {escape(item.reason)}</li>" for item in summary.skipped[:1000])
    more = f"<p>... and {len(summary.skipped) - 1000:,} more.</p>" if len(summary.skipped) > 1000 else ""
    return f"""<section id="skipped" class="panel warn"><h2>Skipped files</h2>
<p>{len(summary.skipped):,} file{"s" if len(summary.skipped) != 1 else ""} could not be used and {"are" if len(summary.skipped) != 1 else "is"} not part of the numbers above.</p>
<ul>{rows}</ul>{more}</section>"""


CSS = """
:root {
  --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #5d6677; --line: #e1e4ea; --accent: #2f6fdb;
  --accent-soft: #e6eefc; --warn-bg: #fff6e0; --warn-line: #f0c36d; --alarm: #c9302c; --alarm-soft: #fdecea;
}
@media (prefers-color-scheme: dark) {
  :root { --bg: #14171d; --card: #1d222b; --ink: #e6e9ef; --muted: #9aa3b2; --line: #2e3440; --accent: #7aa7ff;
          --accent-soft: #26324a; --warn-bg: #33290f; --warn-line: #8a6a1f; --alarm: #ff7b72; --alarm-soft: #3a1f1f; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main, .page-head .inner, footer { max-width: 1280px; margin: 0 auto; padding: 0 24px; }
h1, h2, h3 { margin: 0; font-weight: 600; }
a { color: var(--accent); }
.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.page-head { background: var(--card); border-bottom: 1px solid var(--line); padding: 22px 0 16px; margin-bottom: 22px; }
.page-head h1 { font-size: 22px; }
.subtitle { color: var(--muted); margin: 2px 0 14px; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 10px 22px; margin: 0; }
.facts dt { color: var(--muted); font-size: 11.5px; text-transform: uppercase; letter-spacing: .05em; }
.facts dd { margin: 1px 0 0; overflow-wrap: anywhere; }
.facts .double { grid-column: span 2; } .facts .wide { grid-column: 1 / -1; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 14px 0 0; padding: 0; list-style: none; }
.chip { display: inline-block; padding: 1px 9px; border-radius: 999px; background: var(--accent-soft); color: var(--ink);
  font-size: 12px; text-decoration: none; }
a.chip:hover, a.chip:focus-visible { background: var(--accent); color: #fff; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 14px; padding: 18px 20px; margin-bottom: 22px; }
.panel h2 { font-size: 17px; margin-bottom: 10px; }
.panel h3 { font-size: 14px; margin: 14px 0 6px; }
.panel.warn { border-color: var(--warn-line); }
.note { color: var(--muted); margin: 4px 0 10px; }
.ok { padding: 8px 12px; border-radius: 8px; background: var(--accent-soft); }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin-bottom: 12px; }
.stat { border: 1px solid var(--line); border-radius: 10px; padding: 10px 12px; }
.stat .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat .label { color: var(--muted); font-size: 12px; }
.stat.alarm { border-color: var(--alarm); background: var(--alarm-soft); }
.sentences { margin: 0; padding-left: 20px; } .sentences li { margin: 3px 0; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 16px; }
.plot { margin: 0; } .plot img { width: 100%; height: auto; display: block; background: #fff; border-radius: 8px; }
.plot figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.flag { border: 1px solid var(--alarm); background: var(--alarm-soft); border-radius: 12px; padding: 12px 14px; margin: 10px 0; }
.flag h3 { margin: 0 0 8px; font-size: 14px; overflow-wrap: anywhere; }
.badge { background: var(--alarm); color: #fff; border-radius: 999px; padding: 1px 8px; font-size: 11.5px; }
.flag-body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.pictures { display: flex; flex-wrap: wrap; gap: 10px; }
.pictures figure { margin: 0; width: 140px; }
.pictures figcaption { font-size: 11.5px; color: var(--muted); margin-top: 3px; }
.frame { width: 140px; height: 140px; border-radius: 8px; overflow: hidden; background: #0d0f14;
  display: flex; align-items: center; justify-content: center; }
.frame img { width: 100%; height: 100%; object-fit: contain; image-rendering: pixelated; display: block; }
.missing { color: #c9ced8; font-size: 11px; margin: 0; }
.evidence { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: 3px 12px; margin: 0; min-width: 280px; flex: 1; }
.evidence dt { color: var(--muted); } .evidence dd { margin: 0; overflow-wrap: anywhere; font-variant-numeric: tabular-nums; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 12px 4px 0; border-bottom: 1px solid var(--line); vertical-align: middle; }
.items-table td { white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; white-space: nowrap; }
th .sort { all: unset; cursor: pointer; }
th .sort:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
th[aria-sort="ascending"] .sort::after { content: " \\25B2"; }
th[aria-sort="descending"] .sort::after { content: " \\25BC"; }
td.thumb { width: 44px; }
td.thumb img { width: 36px; height: 36px; object-fit: contain; image-rendering: pixelated; background: #0d0f14;
  border-radius: 4px; display: block; }
tr.outside td { color: var(--muted); font-style: italic; }
.breakdowns { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 8px 24px; }
.warn ul { margin: 0; padding-left: 18px; } .warn li { overflow-wrap: anywhere; }
footer { color: var(--muted); font-size: 12px; padding-bottom: 28px; }
"""

JS = """
(function () {
  "use strict";
  function key(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw !== null && raw !== "" && !isNaN(Number(raw))) { return {n: Number(raw)}; }
    return {s: cell.textContent.trim().toLowerCase()};
  }
  function compare(a, b) {
    if (a.n !== undefined && b.n !== undefined) { return a.n - b.n; }
    if (a.n !== undefined) { return -1; }
    if (b.n !== undefined) { return 1; }
    return a.s < b.s ? -1 : (a.s > b.s ? 1 : 0);
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    var headers = table.querySelectorAll("thead th");
    Array.prototype.forEach.call(headers, function (th, column) {
      var button = th.querySelector("button.sort");
      if (!button) { return; }
      button.addEventListener("click", function () {
        var descending = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(headers, function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var fixed = rows.filter(function (row) { return row.classList.contains("outside"); });
        rows = rows.filter(function (row) { return !row.classList.contains("outside"); });
        rows.sort(function (r1, r2) {
          var order = compare(key(r1.cells[column]), key(r2.cells[column]));
          return descending ? -order : order;
        });
        rows.concat(fixed).forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
"""

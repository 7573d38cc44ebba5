"""``diffusers-attr report``: aggregate many generations into a model card and an HTML report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import CLIError

EXAMPLES = """examples:
  diffusers-attr report runs/* --card my-model/README.md --html report.html
  diffusers-attr report run-a run-b --full-scores --fields label licence contributor --json summary.json
  diffusers-attr report run --index ./index --near-copy-distance 0.05
  diffusers-attr report old-run new-run --allow-mixed-indexes --html mixed.html

Shares come from each image's JSON metadata (its top items) unless --full-scores reads the
<stem>.attribution.safetensors arrays. Near-copy flags use the arrays (maps) and the pictures in the run
folder (or --index for exact pixels). Unreadable or corrupted files are skipped and listed."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="aggregate many attributed images into a model card and an HTML report",
        description="Aggregate the attribution of many generated images (run folders written by "
        "`diffusers-attr generate` / AttributedPipeline.save, or single PNG / .attribution.json files): what the "
        "model leans on, coverage and concentration, breakdowns by metadata, the per-noise-level view, and "
        "near-copy flags with their evidence. Writes a Hugging Face model card (updated in place), a "
        "self-contained HTML report and/or a JSON summary, and prints a short summary.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders, or PNG / .attribution.json files")
    parser.add_argument("--card", default=None, metavar="README.md", help="model card to write or update in place")
    parser.add_argument("--html", default=None, metavar="OUT", help="HTML report file (.html is added to a name without one; "
                        "an existing folder: OUT/attribution-report.html)")
    parser.add_argument("--json", default=None, metavar="OUT.json", help="write the summary as JSON")
    parser.add_argument("--index", default=None, metavar="DIR", help="the index the images were attributed against "
                        "(ids/metadata of unlisted items; exact pixels for near-copy distances)")
    parser.add_argument("--full-scores", action="store_true", help="read every item's share from the arrays files where present")
    parser.add_argument("--fields", nargs="+", default=None, metavar="FIELD", help="metadata fields to break down by "
                        "(default: label, source, licence, contributor and other fields with few values)")
    parser.add_argument("--allow-mixed-indexes", action="store_true", help="aggregate images attributed against different indexes")
    parser.add_argument("--top", type=int, default=20, help="rows of the top-items table in the model card (default 20)")
    parser.add_argument("--title", default=None, help="title of the HTML report")
    group = parser.add_argument_group("near-copy flags (all must hold)")
    group.add_argument("--no-near-copy", action="store_true", help="do not compute near-copy flags")
    group.add_argument("--near-copy-share", type=float, default=0.1, metavar="S",
                       help="min share of the finest-level patch mass held by one item (default 0.1)")
    group.add_argument("--near-copy-ratio", type=float, default=4.0, metavar="R",
                       help="min ratio of that share to the runner-up's (default 4)")
    group.add_argument("--near-copy-alignment", type=float, default=0.8, metavar="A",
                       help="min cosine of query map and shifted source map (default 0.8)")
    group.add_argument("--near-copy-distance", type=float, default=0.1, metavar="D",
                       help="max RMS pixel difference, pixels in [-1, 1] (default 0.1)")
    group.add_argument("--near-copy-shift", type=int, default=4, metavar="P",
                       help="largest translation tried, in map pixels (default 4)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..report import NearCopyThresholds, aggregate, write_model_card, write_summary_html

    for source in args.runs:
        if not Path(source).exists():
            raise CLIError(f"{source} does not exist; give run folders or PNG / .attribution.json files")
    if args.top < 1:
        raise CLIError(f"--top={args.top} must be a positive integer")
    thresholds = None
    if not args.no_near_copy:
        thresholds = NearCopyThresholds(
            min_share=args.near_copy_share, min_ratio=args.near_copy_ratio, min_alignment=args.near_copy_alignment,
            max_distance=args.near_copy_distance, max_shift=args.near_copy_shift,
        )
    index = None
    if args.index:
        from .common import load_index

        index = load_index(args.index)

    summary = aggregate(
        args.runs, full_scores=args.full_scores, near_copy=thresholds, index=index, fields=args.fields,
        allow_mixed_indexes=args.allow_mixed_indexes, max_items=max(500, args.top),
    )

    written = []
    if args.card:
        written.append(("model card", write_model_card(summary, args.card, items=args.top)))
    if args.html:
        written.append(("HTML report", write_summary_html(summary, args.html, title=args.title)))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary.to_dict(), indent=1, default=str) + "\n", encoding="utf-8")
        written.append(("JSON summary", path))

    print(f"{summary.outputs:,} outputs aggregated ({summary.basis} shares; listed items carry {summary.listed_mass:.1%} of the mass)")
    coverage = ", ".join(f"{key}: {value if value is not None else 'not reached'}" for key, value in summary.coverage.items())
    print(f"coverage (items carrying the mass): {coverage}")
    if summary.basis != "full":
        listed = ", ".join(f"{key}: {value}" for key, value in summary.coverage_listed.items())
        print(f"coverage of the listed mass: {listed}")
    mixed = len(summary.indexes) > 1
    for rank, item in enumerate(summary.items[:5], start=1):
        where = f" [index {item.index_group + 1}]" if mixed else ""
        print(f"  #{rank} {item.id}{where}: {item.mean_share:.2%} of all mass, top source of {item.top1:,}")
    if thresholds is not None:
        flags = summary.flags
        print(f"near-copies flagged: {len(flags)}" + (f" ({len(summary.candidates)} more could not be checked fully)" if summary.candidates else ""))
        for evidence in flags[:10]:
            print(f"  {evidence.output} <- {evidence.item_id}: {evidence.summary()}")
        if len(flags) > 10:
            print(f"  ... and {len(flags) - 10} more")
    if summary.skipped:
        print(f"skipped {len(summary.skipped)} file(s) (listed in the report):")
        for skipped in summary.skipped[:5]:
            print(f"  {skipped.path}: {skipped.reason}")
        if len(summary.skipped) > 5:
            print(f"  ... and {len(summary.skipped) - 5} more")
    for what, path in written:
        print(f"wrote the {what}: {path}")
    return 0

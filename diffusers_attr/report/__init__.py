"""Reports over generated images: one run folder in HTML, and the aggregate of many for a model card.

``write_run_report(run_dir)`` writes ``run_dir/index.html`` for the folder
``AttributedPipeline(...)(...).save(run_dir)`` wrote; ``scan_run(run_dir)`` reads that folder (the
images with their attribution, and the files that could not be used), ``iter_run`` streams it.

``aggregate(sources)`` aggregates the attribution of many outputs (run folders, files, results) into an
:class:`AttributionSummary`: shares per training item, coverage, concentration, breakdowns by metadata,
the per-noise-level view and near-copy flags with their evidence. ``write_model_card(summary, path)``
writes it into a Hugging Face model card in place; ``write_summary_html(summary, path)`` writes the
same for humans as one self-contained HTML page.
"""

from .aggregate import (
    AttributionSummary,
    BreakdownRow,
    ItemStats,
    LevelStats,
    aggregate,
)
from .model_card import card_metadata, card_section, write_model_card
from .near_copy import NearCopyEvidence, NearCopyThresholds
from .run_html import (
    RunFolder,
    RunImage,
    SkippedFile,
    iter_run,
    scan_run,
    write_run_report,
)
from .summary_html import write_summary_html

__all__ = [
    "AttributionSummary",
    "BreakdownRow",
    "ItemStats",
    "LevelStats",
    "NearCopyEvidence",
    "NearCopyThresholds",
    "RunFolder",
    "RunImage",
    "SkippedFile",
    "aggregate",
    "card_metadata",
    "card_section",
    "iter_run",
    "scan_run",
    "write_model_card",
    "write_run_report",
    "write_summary_html",
]

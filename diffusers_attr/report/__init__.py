"""Reports over generated images: the static HTML report of a run folder.

``write_run_report(run_dir)`` writes ``run_dir/index.html`` for the folder
``AttributedPipeline(...)(...).save(run_dir)`` wrote; ``scan_run(run_dir)`` reads that folder (the
images with their attribution, and the files that could not be used).
"""

from .run_html import RunFolder, RunImage, SkippedFile, scan_run, write_run_report

__all__ = ["RunFolder", "RunImage", "SkippedFile", "scan_run", "write_run_report"]

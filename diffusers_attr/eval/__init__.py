"""Evaluation of attributions: the linear datamodeling score (LDS) against retrained subset models,
baseline attributors, and the tooling to build the ground truth (subset masks, a resumable
per-subset training driver, per-query diffusion losses with common random noise).

Importing this package needs numpy and torch only.
"""

from .lds import LDSResult, as_query_train, lds, spearman_columns
from .losses import common_noise, diffusion_losses, timestep_grid
from .subsets import finished_subsets, subset_dir, subset_masks, train_subset_models

__all__ = [
    "LDSResult",
    "as_query_train",
    "common_noise",
    "diffusion_losses",
    "finished_subsets",
    "lds",
    "spearman_columns",
    "subset_dir",
    "subset_masks",
    "timestep_grid",
    "train_subset_models",
]

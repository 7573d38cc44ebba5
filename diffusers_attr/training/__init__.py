"""Training small diffusers models: the embedded digits DDPM and per-subset retraining.

Importing this package needs torch only; diffusers is imported when training or loading a
pipeline, scikit-learn when the digits are loaded.
"""

from .ddpm import DEFAULT_UNET_CONFIG, TrainResult, default_unet_config, train_ddpm
from .digits import (
    DEFAULT_N_TRAIN,
    DIGITS_DDPM_TRAINING,
    DIGITS_LICENSE,
    Digits,
    digits_ddpm_path,
    digits_split,
    load_digits_dataset,
    load_digits_ddpm,
)

__all__ = [
    "DEFAULT_N_TRAIN",
    "DEFAULT_UNET_CONFIG",
    "DIGITS_DDPM_TRAINING",
    "DIGITS_LICENSE",
    "Digits",
    "TrainResult",
    "default_unet_config",
    "digits_ddpm_path",
    "digits_split",
    "load_digits_dataset",
    "load_digits_ddpm",
    "train_ddpm",
]

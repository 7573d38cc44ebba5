"""Retrain the committed default model: a small DDPM on the scikit-learn digits.

Reproduces ``diffusers_attr/assets/digits_ddpm`` (see its README.md for the recipe):

    python examples/train_digits.py \\
        --train-grid docs/images/digits_train.png --samples docs/images/digits_samples.png

Every flag defaults to the committed recipe (``DIGITS_DDPM_TRAINING``: seed 0, 3500 steps,
batch 64, AdamW lr 2e-3 with 200 warmup steps and cosine decay, EMA 0.999, 1 torch thread) and the
output folder defaults to the package asset; pass ``--out-dir`` to train elsewhere. An interrupted
run resumes from ``<out-dir>/checkpoint`` when started again with the same flags.
Same as ``python -m diffusers_attr.training``.
"""

from diffusers_attr.training.digits import main

if __name__ == "__main__":
    raise SystemExit(main())

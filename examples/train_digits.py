"""Retrain the committed default model from scratch: a small DDPM on the scikit-learn digits.

Trains the recipe of ``diffusers_attr/assets/digits_ddpm`` (see its README.md) into a new folder:

    python examples/train_digits.py --out-dir digits-ddpm \\
        --train-grid digits_train.png --samples digits_samples.png

Every flag defaults to the committed recipe (``DIGITS_DDPM_TRAINING``: seed 0, 3500 steps,
batch 64, AdamW lr 2e-3 with 200 warmup steps and cosine decay, EMA 0.999, 1 torch thread), so the
new folder holds a model trained exactly like the committed one (the committed run took 22 minutes of training on one CPU core).
Without ``--out-dir`` the output folder is the package asset itself, which already holds the finished
run of this recipe: it is then loaded, not retrained. An interrupted run resumes from
``<out-dir>/checkpoint`` when started again with the same flags.
Same as ``python -m diffusers_attr.training``.
"""

from diffusers_attr.training.digits import main

if __name__ == "__main__":
    raise SystemExit(main())

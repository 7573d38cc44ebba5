"""``python -m diffusers_attr.training``: retrain the committed digits DDPM (see examples/train_digits.py)."""

from .digits import main

raise SystemExit(main())

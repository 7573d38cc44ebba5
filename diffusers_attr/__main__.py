"""``python -m diffusers_attr``: the same as the ``diffusers-attr`` command."""

import sys

from .cli import main

sys.exit(main())

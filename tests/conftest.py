"""Shared test setup.

``tests/`` goes on ``sys.path`` so any test module, in any subfolder, can ``import tiny_pipelines`` (tiny
seeded diffusers pipelines built from configs); the repository root goes there too, so the tests run
without installing the package.
"""

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
for path in (TESTS, TESTS.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def pytest_configure(config):
    # diffusers' schedulers call numpy with torch tensors; numpy 2 warns on every call.
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword")
    config.addinivalue_line("filterwarnings", "ignore:__array_wrap__ must accept context")

"""The demo: a synthetic one-stop desk, run through the real pipeline, summed up for a newcomer."""

from typing import Final

DEFAULT_DOSSIERS: Final = 300
DEFAULT_SEED: Final = 2025

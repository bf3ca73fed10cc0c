"""What the benchmark scripts share: a fresh database, process sampling, py-spy, report lines.

Each script used to carry its own copy of these; one copy keeps their figures measured and
printed alike. The modules import nothing from ``bench``'s scripts, so any script may use them.
"""

from __future__ import annotations

from pathlib import Path

#: The repository root: service code is reported relative to it, child processes start in it.
REPO = Path(__file__).resolve().parents[2]

"""Where the public test vectors of ../shared/testdata are (never copied into this repository).

The repository is checked out beside `shared/`; CI may clone it elsewhere, so the first
ancestor of the repository holding `shared/testdata` wins, then /work/shared. The variable
CALLWARDEN_SHARED_DIR overrides both. Tests that need a file fail (never skip) when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    override = os.environ.get("CALLWARDEN_SHARED_DIR")
    if override:
        return Path(override)
    for ancestor in REPO_ROOT.parents:
        candidate = ancestor / "shared"
        if (candidate / "testdata").is_dir():
            return candidate
    return Path("/work/shared")


RFC4475_DIR = shared_dir() / "testdata" / "rfc4475"

"""Where the project and its per-user state live."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHARTS = REPO / "charts"
VALUES = REPO / "values"
TOOLS_SCRIPT = REPO / "tools" / "build-tools.sh"


def tools_bin() -> Path:
    """Folder with the project's built binaries (`tools/build-tools.sh` links them there)."""
    return Path(os.environ.get("KAIML_TOOLS_BIN", REPO / ".tools" / "bin"))


def state_dir() -> Path:
    """Per-user state (local clusters), outside the clone so a fresh clone finds it."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "kai-ml-platform"


def cache_dir() -> Path:
    """Per-user cache (built tools, remembered checks), outside the clone so a fresh clone reuses it."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kai-ml-platform"

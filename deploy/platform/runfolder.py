"""The run folder, `runs/<timestamp>-<env>/`: rendered templates, the final values and manifests of
each release, the plan and the summary. Kept when something fails (and for --dry-run or --keep-run)
so the user can look; removed after a successful run."""

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.paths import REPO

RUNS = REPO / "runs"


@dataclass
class RunFolder:
    path: Path

    @classmethod
    def create(cls, env: str, root: Path = RUNS) -> "RunFolder":
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{env}"
        n = 1
        while path.exists():
            n += 1
            path = root / f"{stamp}-{env}-{n}"
        path.mkdir(parents=True)
        return cls(path)

    def write_json(self, name: str, data: Any) -> Path:
        out = self.path / name
        out.write_text(json.dumps(data, indent=2, default=str) + "\n")
        return out

    def write_manifest(self, release: str, text: str) -> Path:
        out = self.path / "manifests" / f"{release}.yaml"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return out

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

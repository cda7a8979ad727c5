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
        root.mkdir(parents=True, exist_ok=True)
        n = 1
        while True:  # mkdir claims the name: two runs started in the same second get one each
            path = root / (f"{stamp}-{env}" if n == 1 else f"{stamp}-{env}-{n}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                n += 1

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

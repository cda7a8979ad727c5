"""What one command asks of the platform: the values' inputs, the selection, the cluster, and how to
apply. Built by deploy.commands.options from the command line (tests and benchmarks build it directly)."""

from dataclasses import dataclass, field
from pathlib import Path

from deploy.paths import CHARTS, VALUES
from deploy.platform.apply import ApplyOptions
from deploy.platform.prepare import Selection
from deploy.platform.runfolder import RUNS
from deploy.platform.values import Inputs


@dataclass
class Request:
    inputs: Inputs
    selection: Selection = field(default_factory=Selection)
    kubeconfig: Path | None = None
    local: bool = False
    dry_run: bool = False
    missing_pools: str = "warn"
    keep_run: bool = False
    lock_wait: float = 300.0  # seconds to wait for another run's lock on the environment
    apply: ApplyOptions = field(default_factory=ApplyOptions)
    runs_root: Path = RUNS
    values_dir: Path = VALUES
    charts_dir: Path = CHARTS

    @property
    def on_local_cluster(self) -> bool:
        """--local, or neither --context nor --kubeconfig: the project's local control plane."""
        return self.local or (self.inputs.context is None and self.kubeconfig is None)

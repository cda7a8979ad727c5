"""The harness survives crashes: a cluster whose API server died is detected as stale and
replaced, and `down` leaves no process and no state behind."""

import os
import signal

import pytest

from deploy.cluster.local import LocalCluster, _alive
from deploy.nodepools import NodePool

pytestmark = pytest.mark.cluster

POOLS = {"cpu": NodePool("cpu", {"node-type": "cpu"}, test_nodes=1)}


def test_a_crashed_cluster_is_replaced_and_down_cleans_up() -> None:
    local = LocalCluster("kaiml-lifecycle")
    local.down()
    try:
        local.up(POOLS, log=print)
        first = local._pids()
        assert set(first) >= {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok-controller"}

        os.kill(first["kube-apiserver"], signal.SIGKILL)  # what a crash of the host process leaves
        assert not local.healthy()

        local.up(POOLS, log=print)
        assert local.healthy()
        second = local._pids()
        assert second["kube-apiserver"] != first["kube-apiserver"]
    finally:
        local.down()
    assert not local.cluster_dir.exists()
    assert not [pid for pid in {**first, **second}.values() if _alive(pid)]

"""dev's real-cpu pool (the local cluster's real node, `optional: true`) has no kwok node: the deploy's
preflight does not ask for one, and still asks for a pool that is not optional, against the real API server."""

import dataclasses

import pytest

from deploy.cluster.controlplane import LocalCluster
from deploy.kube.reader import ClientReader
from deploy.platform.nodepools import node_pools
from deploy.platform.preflight import pools_without_nodes
from deploy.platform.values import load_environment

pytestmark = pytest.mark.cluster


def test_the_preflight_asks_for_every_pool_but_the_optional_one(cluster: LocalCluster) -> None:
    reader = ClientReader(cluster.api_client())
    pools = node_pools(load_environment("dev"))
    assert pools["real-cpu"].optional
    assert pools_without_nodes(reader, pools) == {}
    required = {**pools, "real-cpu": dataclasses.replace(pools["real-cpu"], optional=False)}
    assert pools_without_nodes(reader, required) == {"real-cpu": "kai-ml.io/real-node=true"}

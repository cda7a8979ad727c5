"""The command groups that the shared factory makes: bench keeps follow/status/results/delete; train has
its own status, and `stop` where bench has `delete`."""

import typer

from deploy.commands import bench, train


def names(app: typer.Typer) -> set[str]:
    return set(typer.main.get_group(app).commands)


def test_each_workload_gets_its_commands() -> None:
    assert names(bench.app) == {"run", "follow", "status", "results", "delete"}
    assert names(train.app) == {"submit", "follow", "status", "results", "stop", "list", "logs", "artifacts"}

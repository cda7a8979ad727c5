"""Background watches end when asked, at once, against the real API server: a thread left inside a
watch's read at interpreter exit can abort the process (`run start --no-follow` once exited -6 in CI).
Each watch here is opened for 60 s, so a thread that is still alive after the 10 s join was not
stopped by the stop but would have waited for the server."""

import threading

import pytest
from kubernetes import client

from deploy.kube import watch as kube
from deploy.kube.streams import Stop, Stopped, Watches
from deploy.workloads.load.live import LiveView

pytestmark = pytest.mark.cluster


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_watches_deliver_changes_and_end_at_once_when_closed(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    with Watches(namespace, 60, ("maps", core.list_namespaced_config_map, {})) as watches:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "one"}})
        seen = []
        while not any(kube.get(obj, "metadata", "name") == "one" for _, _, obj in seen):
            seen.append(watches.events.get(timeout=30))  # the list, then the watch's ADDED
        assert {topic for topic, _, _ in seen} == {"maps"}
        # Now inside a read that the server would end only in 60 s.
    assert _threads("watch-") == []


def test_a_read_that_begins_after_the_stop_does_not_begin(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    stop = Stop()
    stop.set()
    with pytest.raises(Stopped):
        for _ in kube.observe(core.list_namespaced_config_map, namespace, timeout_s=60, reading=stop.reading):
            pass


def test_the_live_view_ends_with_its_run_where_no_controller_runs(api: client.ApiClient, namespace: str) -> None:
    view = LiveView(api, namespace, "nothing-here")  # it waits, in a watch, for a controller pod that never comes
    threading.Event().wait(1.0)  # into the watch's read
    view.stop()
    assert not view.thread.is_alive()

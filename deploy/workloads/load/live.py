"""The live view of a run on a cluster: the controller's own once-a-second lines (requests done, rate,
errors, in flight, TTFT and ITL p50/p99), streamed from its pod's log while the run is followed. A
thread that watches for the controller's pod, follows its log once it runs, and prints those lines
above the progress display; it ends with the log (or quietly where there is none, as on kwok's fake
nodes), and never holds the run up."""

import re
import threading
from typing import Any

from deploy.console import console
from deploy.kube import watch as kube
from deploy.kube.streams import JOIN_S, Stop

# The controller's live line (loadgen/controller.py live_view): "[   3.0s] done 120 | 40.0 req/s | ...".
LIVE = re.compile(r"^\[(warm-up )?\s*[0-9.]+s\] done ")
# Each watch of the controller's pod ends after this at the latest (a stop ends it at once).
WATCH_S = 60


def _controller_pod(core: Any, namespace: str, run: str, stop: Stop) -> str | None:
    """The name of the run's controller pod once it runs (watched, not polled)."""
    selector = f"kai-ml.io/run={run},kai-ml.io/group=controller"
    for _, pod in kube.observe(
        core.list_namespaced_pod, namespace, timeout_s=WATCH_S, reading=stop.reading, label_selector=selector
    ):
        if kube.get(pod, "status", "phase") in ("Running", "Succeeded", "Failed"):
            return kube.get(pod, "metadata", "name")
    return None


def _follow_log(api_client: Any, namespace: str, run: str, stop: Stop) -> None:
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    try:
        name = _controller_pod(core, namespace, run, stop)
        if name is None:
            return
        response = core.read_namespaced_pod_log(name, namespace, container="loadgen", follow=True,
                                                _preload_content=False)  # fmt: skip
        with stop.reading(response):
            for raw in response:
                for line in raw.decode(errors="replace").splitlines():
                    if LIVE.match(line):
                        console.print(f"  controller {line}", markup=False, highlight=False, soft_wrap=True)
        response.release_conn()
    except Exception:  # no log (kwok), the pod gone, a dropped stream, a stop: the live view just ends
        return


class LiveView:
    """Started with the run's follow; `stop()` ends it before the command returns: its read in flight is
    shut down and the thread joined (a thread left inside an HTTP read at interpreter exit can abort it)."""

    def __init__(self, api_client: Any, namespace: str, run: str) -> None:
        self.stopping = Stop()
        self.thread = threading.Thread(target=_follow_log, args=(api_client, namespace, run, self.stopping),
                                       daemon=True, name="load-live")  # fmt: skip
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(JOIN_S)

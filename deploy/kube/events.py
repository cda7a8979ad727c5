"""The events of a failed release's resources (and of the pods they own), for the failure report."""

from datetime import UTC, datetime
from typing import Any

import yaml

MAX_EVENTS = 12


def manifest_objects(manifest: str) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of each namespaced object in a rendered manifest."""
    out = []
    for doc in yaml.safe_load_all(manifest or ""):
        if isinstance(doc, dict) and doc.get("kind") and (doc.get("metadata") or {}).get("namespace"):
            meta = doc["metadata"]
            out.append((doc["kind"], meta["namespace"], str(meta.get("name", ""))))
    return out


def _when(event: Any) -> datetime | None:
    return event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp


def failure_events(api_client: Any, manifest: str, since: float) -> list[str]:
    """Warning events since `since` (epoch seconds) on the manifest's objects or objects named after
    them (a Deployment's ReplicaSets and Pods); never raises, the report must still be printed."""
    if api_client is None:
        return []
    try:
        from kubernetes import client

        core = client.CoreV1Api(api_client)
        objects = manifest_objects(manifest)
        namespaces = sorted({ns for _, ns, _ in objects})
        names = {name for _, _, name in objects}
        start = datetime.fromtimestamp(since - 5, tz=UTC)
        lines = []
        for ns in namespaces:
            for ev in core.list_namespaced_event(ns, _request_timeout=10).items:
                obj = ev.involved_object
                related = obj.name in names or any(obj.name.startswith(n + "-") for n in names)
                when = _when(ev)
                if not related or ev.type == "Normal" or (when is not None and when < start):
                    continue
                lines.append(f"{obj.kind}/{ns}/{obj.name}: {ev.reason}: {(ev.message or '').strip()}")
        return lines[-MAX_EVENTS:]
    except Exception as err:  # the report matters more than the events
        return [f"(events could not be read: {type(err).__name__})"]

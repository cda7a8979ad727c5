"""Kind `train`: real PyTorch training of a torchvision model on generated data, with checkpoints
in an S3-compatible object store and exact resume (runner/training/, runner/README.md "kind train").

The record: `latency_ms` holds per-step times (forward, backward, optimizer step) of the steps this
process ran, `throughput` the samples per second over its whole loop (checkpoints and progress lines
included), `iterations` those steps; `metrics` the losses, held-out accuracy, resume point and a
digest of the final weights; `artifacts` the object keys of the final model, metrics and last
checkpoint. Never a credential."""

import logging
from typing import Any

from runner import stats
from runner.device import device_info, select_device
from runner.kinds import Measurement, register
from runner.training import loop, models, spec, store

log = logging.getLogger("runner")


@register("train")
def run(config: dict[str, Any]) -> Measurement:
    train_spec = spec.parse(config)
    models.check(train_spec.model, train_spec.classes, train_spec.model_args, train_spec.framework, train_spec.channels)
    device = select_device(config)
    settings = store.settings_from_env()
    run_store = store.RunStore(settings, store.run_id(train_spec.digest))
    log.info(
        "train %s on %s: %d epochs x %d steps, checkpoints every %d steps to %s/%s",
        train_spec.model,
        device,
        train_spec.epochs,
        train_spec.steps_per_epoch,
        train_spec.checkpoint_every,
        run_store.bucket,
        run_store.base,
    )
    outcome = loop.train(train_spec, device, run_store)
    return Measurement(
        device=device_info(device, config),
        latency_ms=stats.latency_stats(outcome.durations_ns),
        throughput=round(outcome.samples / outcome.seconds, 3),
        iterations=len(outcome.durations_ns),
        metrics=outcome.metrics,
        artifacts=outcome.artifacts,
    )

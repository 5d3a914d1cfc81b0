"""Queue depth per Celery queue, read from Redis at scrape time (a Redis list per queue is
how Celery's Redis transport queues messages): the backlog alert and the workers'
autoscaling (KEDA reads the same lists) look at the same number."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "celery"  # Celery's default queue: every stage not routed elsewhere


class QueueDepth(Collector):
    def __init__(self, broker_url: str, queues: set[str]) -> None:
        self.client = redis.Redis.from_url(broker_url, socket_connect_timeout=2,
                                           socket_timeout=2)
        self.queues = sorted(queues | {DEFAULT_QUEUE})

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("lipdub_queue_depth", "Stage messages waiting in a queue",
                                  labels=["queue"])
        up = GaugeMetricFamily("lipdub_broker_up", "1 when the broker answered this scrape")
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                lengths = pipe.execute()
        except redis.RedisError as exc:  # the scrape still answers: the broker is down
            log.warning("queue depth not read: %s", exc)
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            for queue, length in zip(self.queues, lengths, strict=True):
                depth.add_metric([queue], length)
        yield depth
        yield up

"""Prometheus metrics of one app: requests by route and status, latency, index size, writes.

Each app has its own registry (tests and embedders can create several apps in one process);
index counts are read from the index when scraped, so they follow writes by other processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class IndexCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]):
        self._counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self._counts()
        except Exception:  # noqa: BLE001 - an index that cannot be read reports nothing
            return
        for name in ("documents", "chunks"):
            yield GaugeMetricFamily(f"rag_index_{name}", f"{name.capitalize()} in the index.",
                                    value=counts.get(name, 0))


class Telemetry:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("rag_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("rag_http_request_duration_seconds",
                                 "HTTP request latency by route.", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.articles = Counter("rag_ingested_articles", "Articles sent to POST /documents, "
                                "by result.", ["result"], registry=self.registry)
        self.deleted = Counter("rag_deleted_documents", "Documents deleted over HTTP.",
                               registry=self.registry)

    def watch_index(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry.register(IndexCollector(counts))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

"""The adapter's Prometheus metrics (served by `run --metrics-port`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

UNREADABLE = Counter("inspection_unreadable_total", "Device output the adapter could not read",
                     ["device", "reason"])
READINGS = Counter("inspection_readings_total", "Readings written to the queue", ["device"])
ACKS = Counter("inspection_acks_total", "Acks received from the gateway", ["decision"])
QUEUE_DEPTH = Gauge("inspection_queue_depth", "Events in the queue not yet acknowledged by the gateway")
CONNECTED = Gauge("inspection_gateway_connected", "1 while a StreamScans stream to the gateway is open")

"""Observability: Prometheus metrics, Server-Timing, request ids and structured access logs.

See the README ("Observability") for every metric. The serving core only calls
`ServingHooks`; this package implements them and never changes what a client receives beyond
the X-Request-ID and Server-Timing headers.
"""

from app.observability.install import Observability
from app.observability.rejections import REASONS, record_rejection

__all__ = ["REASONS", "Observability", "record_rejection"]

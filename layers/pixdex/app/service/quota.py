"""Per-key request quotas: a token bucket per API key, in this process.

``pixdex serve`` is one process, so its quota is exact. In AWS each warm Lambda container
keeps its own buckets: a key gets up to the rate per container, and the HTTP API stage's
throttle (``api_throttle_rate``) bounds the whole deployment.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from pixdex.config import Settings
from pixdex.errors import RateLimitedError

# Buckets of keys not seen for this long are dropped (a full bucket needs no memory).
_IDLE_SECONDS = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class KeyQuotas:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._swept = time.monotonic()

    def take(self, key_id: str) -> None:
        """One request by ``key_id``; ``RateLimitedError`` (429) when its bucket is empty."""
        now = time.monotonic()
        with self._lock:
            if now - self._swept > _IDLE_SECONDS:
                self._sweep(now)
            bucket = self._buckets.setdefault(key_id, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.rate
        raise RateLimitedError(
            f"this API key sent more than {self.rate:g} requests a second (bursts of "
            f"{self.burst}); retry in {math.ceil(wait)} s",
            retry_after=math.ceil(wait), field="authorization",
        )

    def _sweep(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.updated > _IDLE_SECONDS]
        for key_id in idle:
            del self._buckets[key_id]
        self._swept = now


_quotas: dict[tuple[float, int], KeyQuotas] = {}
_quotas_lock = threading.Lock()


def take(settings: Settings, key_id: str) -> None:
    """Count one request against the key's quota (no-op when quotas are off)."""
    rate = settings.key_requests_per_second
    if rate is None:
        return
    shape = (rate, settings.key_burst)
    with _quotas_lock:
        quotas = _quotas.get(shape)
        if quotas is None:
            quotas = _quotas[shape] = KeyQuotas(rate, settings.key_burst)
    quotas.take(key_id)

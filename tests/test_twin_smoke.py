"""First light of the twin: the functions start in Lambda's shape and answer."""

from __future__ import annotations

from tests.twin.stack import Twin


def test_health_through_api_gateway(twin: Twin) -> None:
    answer = twin.api("GET", "/v1/health")
    assert answer.status == 200, answer.body

"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis) against
the live loopback server: whatever is sent, authenticated or not, it never answers 5xx."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

from pixdex.server import RunningServer
from tests.test_server_support import Keys

EXAMPLES = 25

pytest_plugins = ["tests.test_server_support"]


def test_no_server_errors(api_server: RunningServer, api_keys: Keys) -> None:
    schema = schemathesis.openapi.from_url(f"{api_server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            for headers in ({"Authorization": f"Bearer {api_keys.a}"}, {}):
                response = case.call(base_url=api_server.url, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} -> "
                                    f"{response.status_code}: {response.text[:300]}")

        fuzz()
    assert failures == []
    # The examples got past validation too, not only bounced off it.
    assert sum(n for status, n in statuses.items() if status < 300) >= 50, statuses
    assert {401, 404, 422} <= set(statuses), statuses

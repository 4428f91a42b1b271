"""The model factory (:mod:`pixdex.engines`): one shared instance per model, and a slow
model never holds up another."""

from __future__ import annotations

import socket
import threading

from pixdex.config import Settings
from pixdex.engines import get_model
from pixdex.errors import PixdexError


def test_a_slow_endpoint_does_not_block_other_models(settings: Settings) -> None:
    """Issue 9: the factory held its process-wide lock while the remote embedder asked its
    endpoint which model it serves, so one slow endpoint stalled every ``get_model``."""
    local = get_model(settings.model, settings)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        port = silent.getsockname()[1]
        remote = settings.model_copy(
            update={"embedder": "http", "embedder_url": f"http://127.0.0.1:{port}"}
        )
        failures: list[BaseException] = []

        def ask_the_silent_endpoint() -> None:
            try:
                get_model("some-vision-language-model", remote)
            except PixdexError as exc:  # the endpoint goes away when the test ends
                failures.append(exc)

        asking = threading.Thread(target=ask_the_silent_endpoint, daemon=True)
        asking.start()
        connection, _ = silent.accept()  # the remote model's creation is under way
        with connection:
            answered: list[object] = []
            other = threading.Thread(
                target=lambda: answered.append(get_model(settings.model, settings)), daemon=True
            )
            other.start()
            other.join(timeout=20)  # with the old lock: blocked until the endpoint gave up
            assert answered == [local]
            assert asking.is_alive()  # answered while the other model was still waiting
    asking.join(timeout=30)
    assert not asking.is_alive() and failures


def test_concurrent_first_requests_share_one_instance(settings: Settings) -> None:
    fresh = settings.model_copy(update={"batch_size": settings.batch_size + 1})
    found: list[object] = []
    threads = [
        threading.Thread(target=lambda: found.append(get_model(fresh.model, fresh)))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(found) == 4 and all(model is found[0] for model in found)

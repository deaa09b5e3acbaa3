"""The vlm_server backend against a REAL `transformers serve` answering with a tiny random
Qwen2.5-VL (served_vlm.py), on loopback: the backend and the agent end to end, and a server
killed and started again.

Random weights write random text, so a reply may be unreadable: that is a BackendError quoting
the reply (an `error` result), never a transport error. `transformers serve` 5.23 ignores the
logprobs fields, so verify answers None. The node process with this backend is tested in
test/ros/test_node_vlm_server.py; times are measured in bench/bench_vlm_server.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from served_vlm import ServedVlm

from grounding_agent.backends.base import create_backend
from grounding_agent.backends.vlm_parsing import reply_excerpt
from grounding_agent.backends.vlm_server import VlmServerBackend
from grounding_agent.core.errors import BackendError
from grounding_agent.core.types import Box

pytestmark = pytest.mark.slow

IMAGE = np.random.default_rng(0).integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
# How the backend words failures of the link; an unreadable reply is none of them.
TRANSPORT = ('cannot connect', 'circuit open', 'connection closed', 'no reply within', 'HTTP ')


@pytest.fixture(scope='module')
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedVlm]:
    server = ServedVlm(tmp_path_factory.mktemp('served') / 'tiny-qwen2_5_vl')
    server.start()
    yield server
    server.kill()


def make(served: ServedVlm, **options: Any) -> VlmServerBackend:
    settings: dict[str, Any] = {
        'base_url': served.url,
        'family': 'qwen2_5_vl',
        'timeout_s': 60.0,
        'max_tokens': 16,
    }
    settings.update(options)
    backend = create_backend({'name': 'vlm_server', 'model': served.model, 'options': settings})
    assert isinstance(backend, VlmServerBackend)
    return backend


def answered_by_the_model(backend: VlmServerBackend, call: Any) -> bool:
    """True when the model's reply came back (readable or not); False on a link failure."""
    try:
        call()
    except BackendError as exc:
        message = str(exc)
    else:
        return True
    if any(word in message for word in TRANSPORT):
        return False
    assert repr(reply_excerpt(backend.last_reply_text)) in message or 'reply' in message
    return True


def test_ground_detect_and_verify_through_a_real_server(served: ServedVlm, caplog) -> None:
    backend = make(served)
    try:
        assert answered_by_the_model(
            backend, lambda: backend.ground_expression(IMAGE, 'the red cube')
        )
        assert answered_by_the_model(backend, lambda: backend.detect(IMAGE, ['cube', 'ball']))
        # The server sends no log-probabilities: verify says None, and says why once.
        assert backend.verify(IMAGE, Box(10, 10, 200, 200), 'the red cube') is None
        assert backend.supports_verify is False
        assert 'no token log-probabilities' in caplog.text
        assert backend.health()[0] == 'ok'
    finally:
        backend.close()


def test_the_agent_answers_every_command_through_a_real_server(served: ServedVlm) -> None:
    from grounding_agent.core.agent import GroundingAgent
    from grounding_agent.core.config import ResolverConfig
    from grounding_agent.core.result import GroundingResult
    from grounding_agent.core.types import Frame

    backend = make(served)
    try:
        agent = GroundingAgent(backend, ResolverConfig())
        for command in ('find the red cube', 'is there a blue mug?'):
            result = agent.handle_command(command, Frame(image=IMAGE))
            assert GroundingResult.from_json(result.to_json()) == result
            assert result.status.value in {
                'grounded',
                'rejected',
                'ambiguous',
                'answered',
                'error',
            }
            assert not any(word in result.reason for word in TRANSPORT), result.reason
            if result.target is not None:
                x1, y1, x2, y2 = result.target.box
                assert 0.0 <= x1 <= x2 <= 640.0
                assert 0.0 <= y1 <= y2 <= 480.0
    finally:
        backend.close()


def test_a_killed_server_gives_errors_then_answers_after_its_return(served: ServedVlm) -> None:
    backend = make(served, timeout_s=5.0, max_retries=1, breaker_failures=2, breaker_reset_s=0.5)
    try:
        assert answered_by_the_model(backend, lambda: backend.ground_expression(IMAGE, 'a cube'))
        served.kill()
        failures = []
        for _ in range(3):
            with pytest.raises(BackendError) as raised:
                backend.ground_expression(IMAGE, 'a cube')
            failures.append(str(raised.value))
        assert all(served.url in failure for failure in failures)
        assert 'cannot connect' in failures[0]
        assert 'circuit open' in failures[2]
        level, message = backend.health()
        assert level == 'warn'
        assert 'degraded' in message
        served.start()
        # The breaker lets a probe through 0.5 s after it opened; the server took longer to
        # start, so the first call after its return is answered by the model.
        assert answered_by_the_model(backend, lambda: backend.ground_expression(IMAGE, 'a cube'))
        assert backend.health()[0] == 'ok'
    finally:
        backend.close()


def test_no_server_venv_is_a_failure_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from served_vlm import server_venv

    monkeypatch.setenv('VLM_SERVER_VENV', str(tmp_path / 'missing'))
    with pytest.raises(pytest.fail.Exception, match='make install-vlm-server'):
        server_venv()

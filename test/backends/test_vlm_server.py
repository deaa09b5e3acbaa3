"""The vlm_server backend against a fault-injecting stand-in server (fault_injecting_server.py).

What is checked: the request (image resized to the family's budget, prompts, logprob fields,
token header), coordinate conventions of both families, verify from top log-probabilities or
None when the server sends none, and every fault: each becomes a BackendError naming the server
and the fault, within a bounded number of attempts, and the next request after the server
recovers is answered. The end-to-end tests against a real server are in test_vlm_server_e2e.py.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fault_injecting_server import FaultInjectingServer, unused_port

from grounding_agent.backends.base import BackendConfig, create_backend
from grounding_agent.backends.prompts import detection_prompt, grounding_prompt
from grounding_agent.backends.vlm_server import VlmServerBackend, smart_resize_size
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.core.types import Box

IMAGE = np.full((480, 640, 3), 90, dtype=np.uint8)
QWEN25 = 'Qwen/Qwen2.5-VL-7B-Instruct'
QWEN3 = 'Qwen/Qwen3-VL-8B-Instruct'


@pytest.fixture
def server() -> Iterator[FaultInjectingServer]:
    fake = FaultInjectingServer()
    yield fake
    fake.close()


def make(url: str, model: str = QWEN25, **options: Any) -> VlmServerBackend:
    settings: dict[str, Any] = {'base_url': url, 'timeout_s': 3.0, 'backoff_s': 0.01}
    settings.update(options)
    backend = create_backend({'name': 'vlm_server', 'model': model, 'options': settings})
    assert isinstance(backend, VlmServerBackend)
    return backend


@pytest.fixture
def backends() -> Iterator[list[VlmServerBackend]]:
    made: list[VlmServerBackend] = []
    yield made
    for backend in made:
        backend.close()


def test_qwen2_5_boxes_are_pixels_of_the_image_as_sent(server, backends) -> None:
    backend = make(server.url)
    backends.append(backend)
    # 640x480 is sent as smart_resize makes it (multiples of 28), so the server keeps it.
    sent = smart_resize_size(640, 480, factor=28, min_pixels=3136, max_pixels=1280 * 28 * 28)
    assert sent == (644, 476)
    server.set_reply('```json\n{"bbox_2d": [0, 0, 322, 238]}\n```')
    detection = backend.ground_expression(IMAGE, 'the  red cube')
    assert detection is not None
    assert detection.box.to_list() == pytest.approx([0.0, 0.0, 320.0, 240.0])
    assert detection.score == 1.0  # no logprobs sent: score_without_logprobs
    request = server.requests[-1]
    assert request.image_size == sent
    assert request.body['model'] == QWEN25
    assert request.body['temperature'] == 0.0
    assert request.body['messages'][0] == {
        'role': 'system',
        'content': 'You are a helpful assistant.',
    }
    text = request.body['messages'][1]['content'][1]['text']
    assert text == grounding_prompt('the red cube')
    assert 'Authorization' not in request.headers


def test_qwen3_boxes_are_relative_1000(server, backends) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.set_reply('{"bbox_2d": [500, 500, 1000, 1000]}')
    detection = backend.ground_expression(IMAGE, 'the mug')
    assert detection is not None
    assert detection.box.to_list() == pytest.approx([320.0, 240.0, 640.0, 480.0])
    assert server.requests[-1].body['messages'][0]['role'] == 'user'  # no system turn
    width, height = server.requests[-1].image_size
    assert width % 32 == 0
    assert height % 32 == 0


def test_absent_answer_and_detect_one_request_per_phrase(server, backends) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.set_reply('{"bbox_2d": null}')
    assert backend.ground_expression(IMAGE, 'a unicorn') is None
    server.set_reply('[{"bbox_2d": [0, 0, 500, 500], "label": "cube"}]')
    found = backend.detect(IMAGE, ['cube', 'ball', 'cube', ' '])
    assert sorted(d.phrase for d in found) == ['ball', 'cube']
    prompts = sorted(r.body['messages'][0]['content'][1]['text'] for r in server.requests[1:])
    assert prompts == sorted([detection_prompt('cube'), detection_prompt('ball')])


def test_scores_and_verify_from_log_probabilities(server, backends) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.set_reply(
        '{"bbox_2d": [0, 0, 500, 500]}',
        logprobs=[{'token': 'a', 'logprob': np.log(0.5)}, {'token': 'b', 'logprob': 0.0}],
    )
    detection = backend.ground_expression(IMAGE, 'the cube')
    assert detection is not None
    assert detection.score == pytest.approx(0.75)
    server.set_reply(
        'Yes',
        logprobs=[
            {
                'token': 'Yes',
                'logprob': np.log(0.6),
                'top_logprobs': [
                    {'token': 'Yes', 'logprob': np.log(0.6)},
                    {'token': 'No', 'logprob': np.log(0.2)},
                    {'token': ' yes', 'logprob': np.log(0.1)},
                    {'token': 'Maybe', 'logprob': np.log(0.05)},
                ],
            }
        ],
    )
    p_yes = backend.verify(IMAGE, Box(10, 10, 300, 200), 'the cube')
    assert p_yes == pytest.approx(0.7 / 0.9)
    body = server.requests[-1].body
    assert body['max_tokens'] == 1
    assert body['logprobs'] is True
    assert body['top_logprobs'] == 20
    assert '"bbox_2d": [16, 21, 469, 417]' in body['messages'][0]['content'][1]['text']


def test_verify_says_none_once_when_the_server_sends_no_logprobs(server, backends, caplog) -> None:
    backend = make(server.url)
    backends.append(backend)
    server.set_reply('Yes')
    with caplog.at_level(logging.WARNING, logger='grounding_agent.backends.vlm_server'):
        assert backend.verify(IMAGE, Box(10, 10, 300, 200), 'the cube') is None
        assert backend.verify(IMAGE, Box(10, 10, 300, 200), 'the cube') is None
    assert backend.supports_verify is False
    assert sum('no token log-probabilities' in r.message for r in caplog.records) == 1
    assert server.count() == 1  # the second call knows already and sends nothing


def test_a_server_refusing_logprobs_is_asked_again_without_them(server, backends, caplog) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.plan.standing_fault = 'refuse_logprobs'
    server.set_reply('{"bbox_2d": [0, 0, 500, 500]}')
    with caplog.at_level(logging.WARNING, logger='grounding_agent.backends.vlm_server'):
        assert backend.ground_expression(IMAGE, 'cube') is not None
        assert backend.ground_expression(IMAGE, 'cube') is not None
        assert backend.verify(IMAGE, Box(10, 10, 300, 200), 'the cube') is None
    assert [('logprobs' in r.body) for r in server.requests] == [True, False, False, False]
    assert sum('refuses log-probabilities' in r.message for r in caplog.records) == 1
    assert backend.health()[0] == 'ok'


def test_api_key_comes_from_the_environment_and_is_never_an_option(
    server, backends, monkeypatch, caplog
) -> None:
    monkeypatch.setenv('TEST_VLM_TOKEN', 's3cret-token')
    with caplog.at_level(logging.DEBUG):
        backend = make(server.url, api_key_env='TEST_VLM_TOKEN')
        backends.append(backend)
        server.set_reply('{"bbox_2d": null}')
        backend.ground_expression(IMAGE, 'cube')
    assert server.requests[-1].headers['Authorization'] == 'Bearer s3cret-token'
    assert 's3cret' not in caplog.text
    assert 's3cret' not in repr(backend.options)
    with pytest.raises(ConfigError, match='api_key_env'):
        make(server.url, api_key='s3cret-token')
    with pytest.raises(ConfigError, match='NOT_SET_ANYWHERE'):
        make(server.url, api_key_env='NOT_SET_ANYWHERE')


@pytest.mark.parametrize(
    ('settings', 'match'),
    [
        ({'model': 'some-vlm'}, 'family'),
        ({'options': {'base_url': 'ftp://host/v1'}}, 'base_url'),
        ({'options': {'base_url': 'http://h/v1', 'timeout_s': -1}}, 'timeout_s'),
        ({'options': {'base_url': 'http://h/v1', 'retries': 2}}, 'retries'),
        ({'model': ''}, 'backend.model'),
    ],
)
def test_bad_settings_are_config_errors(settings: dict[str, Any], match: str) -> None:
    config: dict[str, Any] = {
        'name': 'vlm_server',
        'model': QWEN25,
        'options': {'base_url': 'http://127.0.0.1:1/v1'},
    }
    config.update(settings)
    with pytest.raises(ConfigError, match=match):
        create_backend(BackendConfig.from_mapping(config))


def test_a_transient_503_is_retried_and_answered(server, backends) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.plan.faults = ['status:503', 'status:429']
    server.set_reply('{"bbox_2d": [0, 0, 500, 500]}')
    assert backend.ground_expression(IMAGE, 'cube') is not None
    assert server.count() == 3
    assert backend.health()[0] == 'ok'


@pytest.mark.parametrize(
    ('fault', 'message'),
    [
        ('status:429', 'HTTP 429'),
        ('status:503', 'HTTP 503'),
        ('malformed', 'malformed JSON'),
        ('truncated', 'connection closed mid-reply'),
        ('close', 'connection closed mid-reply'),
    ],
)
def test_each_fault_is_an_error_naming_server_and_fault(
    server, backends, fault: str, message: str
) -> None:
    backend = make(server.url, QWEN3, max_retries=2, breaker_failures=5)
    backends.append(backend)
    server.plan.standing_fault = fault
    with pytest.raises(BackendError) as raised:
        backend.ground_expression(IMAGE, 'cube')
    assert server.url in str(raised.value)
    assert message in str(raised.value)
    assert 'after 3 of 3 attempts' in str(raised.value)
    assert server.count() == 3
    level, text = backend.health()
    assert level == 'warn'
    assert 'degraded' in text
    assert message in text
    server.plan.standing_fault = None
    server.set_reply('{"bbox_2d": [0, 0, 500, 500]}')
    assert backend.ground_expression(IMAGE, 'cube') is not None
    assert backend.health()[0] == 'ok'


def test_a_client_error_is_not_retried(server, backends) -> None:
    backend = make(server.url, QWEN3)
    backends.append(backend)
    server.plan.faults = ['status:404']
    with pytest.raises(BackendError, match='HTTP 404'):
        backend.ground_expression(IMAGE, 'cube')
    assert server.count() == 1


def test_unreachable_server_is_an_error(backends) -> None:
    url = f'http://127.0.0.1:{unused_port()}/v1'
    backend = make(url, QWEN3)
    backends.append(backend)
    with pytest.raises(BackendError, match='cannot connect') as raised:
        backend.ground_expression(IMAGE, 'cube')
    assert url in str(raised.value)


def test_a_slow_server_fails_at_the_deadline_not_later(server, backends) -> None:
    backend = make(server.url, QWEN3, timeout_s=0.5)
    backends.append(backend)
    server.plan.faults = ['slow:3']
    with pytest.raises(BackendError, match=r'no reply within 0\.5 s'):
        backend.ground_expression(IMAGE, 'cube')
    assert server.count() == 1  # the deadline left no time for another attempt


def test_the_breaker_opens_then_a_probe_closes_it(server, backends) -> None:
    backend = make(server.url, QWEN3, max_retries=0, breaker_failures=2, breaker_reset_s=0.3)
    backends.append(backend)
    server.plan.standing_fault = 'status:503'
    for _ in range(2):
        with pytest.raises(BackendError, match='HTTP 503'):
            backend.ground_expression(IMAGE, 'cube')
    with pytest.raises(BackendError, match='circuit open after 2 failed requests'):
        backend.ground_expression(IMAGE, 'cube')
    assert server.count() == 2  # the open breaker sent nothing
    assert 'circuit open' in backend.health()[1]
    server.plan.standing_fault = None
    server.set_reply('{"bbox_2d": null}')
    refusals: list[str] = []
    answered = None
    for _ in range(50):  # until the breaker lets a probe through
        try:
            answered = backend.ground_expression(IMAGE, 'cube') is None
            break
        except BackendError as exc:
            refusals.append(str(exc))
            time.sleep(0.05)
    assert answered is True
    assert all('circuit open' in refusal for refusal in refusals)
    assert backend.health()[0] == 'ok'


def test_sixteen_concurrent_callers_each_get_one_answer(server, backends) -> None:
    backend = make(server.url, QWEN3, max_concurrent=4, timeout_s=10.0)
    backends.append(backend)
    server.plan.delay_s = 0.05
    server.set_reply('{"bbox_2d": [0, 0, 500, 500]}')
    answers: dict[int, list[Any]] = {i: [] for i in range(16)}

    def call(index: int) -> None:
        try:
            answers[index].append(backend.ground_expression(IMAGE, f'object {index}'))
        except BackendError as exc:
            answers[index].append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(len(a) == 1 and a[0] is not None for a in answers.values())
    assert all(not isinstance(a[0], BaseException) for a in answers.values())
    assert server.count() == 16
    assert server.max_in_flight <= 4
    descriptions = sorted(r.body['messages'][0]['content'][1]['text'] for r in server.requests)
    assert descriptions == sorted(grounding_prompt(f'object {i}') for i in range(16))


def test_a_closed_backend_refuses_politely(server) -> None:
    backend = make(server.url, QWEN3)
    backend.close()
    with pytest.raises(BackendError, match='closed'):
        backend.ground_expression(IMAGE, 'cube')

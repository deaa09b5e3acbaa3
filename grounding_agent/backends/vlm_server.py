"""The `vlm_server` backend: a Qwen2.5-VL / Qwen3-VL served by an inference engine.

TensorRT-LLM (`trtllm-serve`), vLLM, SGLang and `transformers serve` all answer the OpenAI
chat-completions protocol with images. This backend sends the camera image (JPEG, base64 data
URL, already resized to the model family's pixel budget so the server does not resize it again)
with the same prompts `qwen_vl` uses, and reads the reply with the same parser and coordinate
conventions, so `ground_expression`, `detect` and `verify` behave as they do with a local model.

Requests run on one asyncio loop in a background thread (httpx.AsyncClient): each call has one
deadline (`timeout_s`) that bounds everything (connecting, waiting for the model, retries with
back-off and jitter), a semaphore bounds the requests in flight, and a circuit breaker stops
calling a server that keeps failing until a probe gets through. Every failure is a BackendError
naming the server and what went wrong, which the agent turns into an `error` result.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import os
import random
import ssl
import threading
import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import httpx
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grounding_agent.backends._hf import prepare_image
from grounding_agent.backends.base import Backend, BackendConfig, register_backend
from grounding_agent.backends.nms import nms_detections
from grounding_agent.backends.prompts import (
    detection_prompt,
    grounding_prompt,
    verification_prompt,
)
from grounding_agent.backends.qwen_vl import ModelFamily, model_family
from grounding_agent.backends.vlm_parsing import (
    CoordinateConvention,
    ImageGeometry,
    VlmReply,
    YesNo,
    expression_detection,
    parse_reply,
    phrase_detections,
    reply_excerpt,
    to_model_coordinates,
    yes_no_probability,
)
from grounding_agent.core.errors import BackendError, ConfigError
from grounding_agent.core.types import Box, Detection

__all__ = ['VlmServerBackend', 'VlmServerOptions', 'smart_resize_size']

_LOG = logging.getLogger(__name__)

# Spellings of a one-word answer as a server's tokenizer may print its first token.
_YES = frozenset({'yes', 'ġyes', '▁yes'})
_NO = frozenset({'no', 'ġno', '▁no'})
# Statuses worth another attempt: rate limited, overloaded, gateway trouble, request timeout.
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class _Budget:
    """A family's image patch layout and the pixel budget its processor resizes into."""

    factor: int  # patch_size * merge_size: both sides of the model input are multiples of it
    min_pixels: int
    max_pixels: int


# Defaults of the models' preprocessor_config.json, except max_pixels: 1280 image tokens, the
# budget the Qwen model cards recommend serving with (the processors' own default is far larger).
_BUDGETS = {
    CoordinateConvention.RESIZED_PIXELS: _Budget(28, 56 * 56, 1280 * 28 * 28),
    CoordinateConvention.RELATIVE_1000: _Budget(32, 64 * 32 * 32 // 16, 1280 * 32 * 32),
}


class VlmServerOptions(BaseModel):
    """`BackendConfig.options` of `vlm_server` (unknown keys are refused).

    The API key is never an option: `api_key_env` names the environment variable holding it.
    """

    model_config = ConfigDict(frozen=True, extra='forbid')

    base_url: str = Field(min_length=1)
    family: Literal['', 'qwen2_5_vl', 'qwen3_vl', 'qwen3_vl_moe'] = ''
    api_key_env: str = ''
    #: CA bundle (PEM) that signed the server's certificate, for https with a private CA;
    #: '' = the system's trusted certificates.
    ca_file: str = ''
    timeout_s: float = Field(default=30.0, gt=0.0, le=600.0)
    connect_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    max_concurrent: int = Field(default=4, ge=1, le=256)
    max_retries: int = Field(default=2, ge=0, le=10)
    backoff_s: float = Field(default=0.2, ge=0.0, le=30.0)
    breaker_failures: int = Field(default=3, ge=1, le=100)
    breaker_reset_s: float = Field(default=1.0, ge=0.0, le=600.0)
    max_tokens: int = Field(default=128, ge=1, le=4096)
    max_pixels: int = Field(default=0, ge=0)
    min_pixels: int = Field(default=0, ge=0)
    jpeg_quality: int = Field(default=90, ge=10, le=100)
    logprobs: bool = True
    top_logprobs: int = Field(default=20, ge=1, le=20)
    score_without_logprobs: float = Field(default=1.0, ge=0.0, le=1.0)


def smart_resize_size(
    width: int, height: int, *, factor: int, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """(width, height) the Qwen processors resize an image to (transformers' smart_resize)."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    new_height, new_width = smart_resize(
        height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels
    )
    return int(new_width), int(new_height)


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One camera image as sent: its data URL and the sizes that map boxes back."""

    data_url: str
    geometry: ImageGeometry


@dataclass(frozen=True, slots=True)
class _Reply:
    """What one chat completion gave: text and, when the server sent them, token logprobs."""

    text: str
    token_logprobs: tuple[float, ...] | None
    first_top: tuple[tuple[str, float], ...] | None
    server_s: float


class _Breaker:
    """Closed -> open after `failures` failed calls in a row -> half-open after `reset_s` (one
    probe goes through; its success closes the breaker, its failure opens it again)."""

    def __init__(self, failures: int, reset_s: float) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._lock = threading.Lock()
        self.consecutive = 0
        self.opened_at: float | None = None
        self.probing = False
        self.last_error = ''
        self.total_failures = 0
        self.total_ok = 0

    def admit(self) -> str | None:
        """None when a call may go ahead, else why it may not."""
        with self._lock:
            if self.opened_at is None:
                return None
            waited = time.monotonic() - self.opened_at
            if waited >= self._reset_s and not self.probing:
                self.probing = True
                return None
            return (
                f'circuit open after {self.consecutive} failed requests '
                f'(retrying the server {max(0.0, self._reset_s - waited):.1f} s from now); '
                f'last error: {self.last_error}'
            )

    def success(self) -> None:
        with self._lock:
            self.consecutive = 0
            self.opened_at = None
            self.probing = False
            self.total_ok += 1

    def failure(self, error: str) -> None:
        with self._lock:
            self.consecutive += 1
            self.total_failures += 1
            self.last_error = error
            if self.probing or self.consecutive >= self._threshold:
                self.opened_at = time.monotonic()
            self.probing = False

    def state(self) -> str:
        with self._lock:
            if self.opened_at is None:
                return 'closed'
            return 'half-open' if self.probing else 'open'


class _LogprobsRefusedError(Exception):
    """The server refused the request because it asked for log-probabilities."""


class _RetryableError(Exception):
    """An attempt failed in a way another attempt may fix."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@register_backend('vlm_server')
class VlmServerBackend(Backend):
    """Qwen2.5-VL / Qwen3-VL behind an OpenAI-compatible chat-completions server.

    `BackendConfig.model` is the model name the server knows; `options` are `VlmServerOptions`.
    Calls may come from several threads; at most `max_concurrent` requests are in flight.
    """

    name = 'vlm_server'
    supports_verify = True
    supports_expression = True

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        if 'api_key' in config.options:
            raise ConfigError(
                'vlm_server takes no api_key option: put the key in an environment variable '
                'and name it in api_key_env'
            )
        try:
            self.options = VlmServerOptions.model_validate(config.options)
        except ValidationError as exc:
            raise ConfigError(f'invalid vlm_server options: {exc}') from exc
        if not config.model.strip():
            raise ConfigError('vlm_server needs backend.model: the model name the server serves')
        self.family: ModelFamily = model_family(self.options.family or _guess_family(config.model))
        defaults = _BUDGETS[self.family.convention]
        self._budget = _Budget(
            defaults.factor,
            self.options.min_pixels or defaults.min_pixels,
            self.options.max_pixels or defaults.max_pixels,
        )
        if self._budget.min_pixels > self._budget.max_pixels:
            raise ConfigError(
                f'vlm_server min_pixels {self._budget.min_pixels} exceeds max_pixels '
                f'{self._budget.max_pixels}'
            )
        # Imports transformers' smart_resize now, not on the first command.
        smart_resize_size(64, 64, factor=self._budget.factor, min_pixels=1, max_pixels=1 << 20)
        url = httpx.URL(self.options.base_url.rstrip('/'))
        if url.scheme not in ('http', 'https') or not url.host:
            raise ConfigError(f'vlm_server base_url must be http(s)://host[:port]/..., got {url}')
        #: The server as error messages name it (no user info, no query).
        self.server = str(url.copy_with(username=None, password=None, query=None, fragment=None))
        self._endpoint = self.server + '/chat/completions'
        if self.options.ca_file and not os.path.isfile(self.options.ca_file):
            raise ConfigError(f'vlm_server ca_file {self.options.ca_file!r} does not exist')
        headers = {'Content-Type': 'application/json'}
        if self.options.api_key_env:
            key = os.environ.get(self.options.api_key_env, '')
            if not key:
                raise ConfigError(
                    f'vlm_server: environment variable {self.options.api_key_env!r} '
                    '(api_key_env) is not set or empty'
                )
            headers['Authorization'] = f'Bearer {key}'
        self._headers = headers
        self._breaker = _Breaker(self.options.breaker_failures, self.options.breaker_reset_s)
        self._verify_unavailable_logged = False
        #: Set when the server refused a request for asking for log-probabilities.
        self._logprobs_refused = False
        self._closed = False
        #: The last reply as parsed and its raw text, for diagnostics (last call of any thread).
        self.last_reply: VlmReply | None = None
        self.last_reply_text = ''
        #: Time of the last request's server round trip (HTTP included), for the benchmark.
        self.last_server_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name='vlm_server-http', daemon=True
        )
        self._thread.start()
        self._client: httpx.AsyncClient = self._on_loop(self._make_client(), timeout=5.0)

    # -- public API -------------------------------------------------------------------------

    def ground_expression(
        self, image: npt.NDArray[np.uint8], description: str
    ) -> Detection | None:
        """The one box the model gives for `description` (GroundingME's prompt), or None."""
        text = _checked_text(description)
        encoded = self._encode(image)
        reply = self._complete(encoded, grounding_prompt(text), max_tokens=self.options.max_tokens)
        parsed = parse_reply(reply.text)
        self.last_reply = parsed
        detection, self.last_reply = expression_detection(
            parsed,
            description=description,
            score=self._confidence(reply),
            convention=self.family.convention,
            geometry=encoded.geometry,
        )
        return detection

    def detect(self, image: npt.NDArray[np.uint8], phrases: Sequence[str]) -> list[Detection]:
        """All instances of each phrase, one request per phrase (sent concurrently)."""
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise BackendError(f'phrases must be text, got {type(phrase).__name__}')
        wanted = list(dict.fromkeys(p for p in phrases if p.strip()))
        if not wanted:
            return []
        encoded = self._encode(image)
        replies = self._complete_many(
            encoded, [detection_prompt(p) for p in wanted], max_tokens=self.options.max_tokens
        )
        found: list[Detection] = []
        for phrase, reply in zip(wanted, replies, strict=True):
            parsed = parse_reply(reply.text)
            self.last_reply = parsed
            found.extend(
                phrase_detections(
                    parsed,
                    phrase=phrase,
                    score=self._confidence(reply),
                    convention=self.family.convention,
                    geometry=encoded.geometry,
                )
            )
        return nms_detections(
            found, iou_threshold=self.config.nms_iou, max_detections=self.config.max_detections
        )

    def verify(self, image: npt.NDArray[np.uint8], box: Box, description: str) -> float | None:
        """P(yes) from the first answer token's log-probabilities; None when the server does
        not return log-probabilities (said once in the log)."""
        if not self.supports_verify:
            return None
        probabilities = self.verify_probabilities(image, box, description)
        return None if probabilities is None else probabilities.yes

    def verify_probabilities(
        self, image: npt.NDArray[np.uint8], box: Box, description: str
    ) -> YesNo | None:
        text = _checked_text(description)
        encoded = self._encode(image)
        width, height = encoded.geometry.width, encoded.geometry.height
        inside = box.clip(width, height)
        if inside.area <= 0.0:
            raise BackendError(f'box {box.to_list()} to verify lies outside the image')
        coordinates = to_model_coordinates(
            inside, convention=self.family.convention, geometry=encoded.geometry
        )
        reply = self._complete(encoded, verification_prompt(text, coordinates), max_tokens=1)
        if reply.first_top is None:
            self.supports_verify = False
            if not self._verify_unavailable_logged:
                self._verify_unavailable_logged = True
                _LOG.warning(
                    'vlm_server %s returns no token log-probabilities: verify() answers None '
                    '(no probability to read); the resolver keeps its winner unverified',
                    self.server,
                )
            return None
        return _yes_no_from_top(reply.first_top, reply.text)

    def warmup(self) -> None:
        """One request on a blank image: connects and fails early on a wrong URL or model."""
        self._complete(
            self._encode(np.zeros((64, 64, 3), dtype=np.uint8)),
            grounding_prompt('object'),
            max_tokens=self.options.max_tokens,
        )

    def health(self) -> tuple[str, str]:
        """(level, message) for /diagnostics: 'warn' while requests fail or the breaker is open."""
        state = self._breaker.state()
        if state == 'closed' and self._breaker.consecutive == 0:
            return 'ok', f'{self.server} ({self.config.model}) answering'
        return (
            'warn',
            f'degraded: {self.server} circuit {state}, {self._breaker.consecutive} failed '
            f'requests in a row; last error: {self._breaker.last_error}',
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(BackendError):
            self._on_loop(self._client.aclose(), timeout=2.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=2.0)

    # -- image ------------------------------------------------------------------------------

    def _encode(self, image: npt.NDArray[np.uint8]) -> _Encoded:
        """The image shrunk to max_image_side, resized as the model's processor would (so the
        server's own smart_resize leaves it as it is), as a JPEG data URL."""
        if self._closed:
            raise BackendError('vlm_server backend was closed; create it again')
        shrunk = prepare_image(image, self.config.max_image_side)
        height, width = shrunk.image.shape[:2]
        try:
            new_width, new_height = smart_resize_size(
                width,
                height,
                factor=self._budget.factor,
                min_pixels=self._budget.min_pixels,
                max_pixels=self._budget.max_pixels,
            )
        except ValueError as exc:  # aspect ratio beyond 200:1
            raise BackendError(f'vlm_server cannot send this image: {exc}') from exc
        pixels = shrunk.image
        if (new_width, new_height) != (width, height):
            interpolation = cv2.INTER_AREA if new_width < width else cv2.INTER_CUBIC
            resized = cv2.resize(pixels, (new_width, new_height), interpolation=interpolation)
            pixels = np.asarray(resized, dtype=np.uint8)
        ok, jpeg = cv2.imencode(
            '.jpg',
            cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, self.options.jpeg_quality],
        )
        if not ok:
            raise BackendError('vlm_server: JPEG encoding of the camera image failed')
        data_url = 'data:image/jpeg;base64,' + base64.b64encode(jpeg.tobytes()).decode('ascii')
        return _Encoded(
            data_url,
            ImageGeometry(
                width=shrunk.original_width,
                height=shrunk.original_height,
                input_width=new_width,
                input_height=new_height,
            ),
        )

    def _confidence(self, reply: _Reply) -> float:
        """Mean probability of the reply's tokens, as qwen_vl scores its own generations."""
        if not reply.token_logprobs:
            return self.options.score_without_logprobs
        probabilities = [math.exp(min(0.0, lp)) for lp in reply.token_logprobs]
        return float(min(1.0, max(0.0, sum(probabilities) / len(probabilities))))

    # -- HTTP -------------------------------------------------------------------------------

    def _payload(self, encoded: _Encoded, prompt: str, max_tokens: int) -> dict[str, Any]:
        messages: list[dict[str, Any]] = []
        if self.family.system_prompt:
            messages.append({'role': 'system', 'content': self.family.system_prompt})
        messages.append(
            {
                'role': 'user',
                'content': [
                    {'type': 'image_url', 'image_url': {'url': encoded.data_url}},
                    {'type': 'text', 'text': prompt},
                ],
            }
        )
        payload: dict[str, Any] = {
            'model': self.config.model,
            'messages': messages,
            'max_tokens': max_tokens,
            'temperature': 0.0,
            'stream': False,
        }
        if self.options.logprobs and not self._logprobs_refused:
            payload['logprobs'] = True
            if max_tokens == 1:
                payload['top_logprobs'] = self.options.top_logprobs
        return payload

    def _complete(self, encoded: _Encoded, prompt: str, *, max_tokens: int) -> _Reply:
        return self._complete_many(encoded, [prompt], max_tokens=max_tokens)[0]

    def _complete_many(
        self, encoded: _Encoded, prompts: Sequence[str], *, max_tokens: int
    ) -> list[_Reply]:
        self.last_reply = None
        self.last_reply_text = ''
        deadline = time.monotonic() + self.options.timeout_s
        payloads = [self._payload(encoded, p, max_tokens) for p in prompts]
        replies: list[_Reply] = self._on_loop(
            self._request_all(payloads, deadline), timeout=self.options.timeout_s + 1.0
        )
        self.last_reply_text = replies[-1].text
        self.last_server_s = max(r.server_s for r in replies)
        return replies

    def _on_loop(self, coroutine: Any, *, timeout: float) -> Any:
        """Run `coroutine` on the HTTP loop and wait for it at most `timeout` seconds."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout as exc:
            future.cancel()
            raise BackendError(
                f'vlm_server {self.server}: no answer within {timeout:.1f} s'
            ) from exc

    async def _make_client(self) -> httpx.AsyncClient:
        self._semaphore = asyncio.Semaphore(self.options.max_concurrent)
        limits = httpx.Limits(
            max_connections=self.options.max_concurrent,
            max_keepalive_connections=self.options.max_concurrent,
        )
        verify: ssl.SSLContext | bool = True
        if self.options.ca_file:
            verify = ssl.create_default_context(cafile=self.options.ca_file)
        return httpx.AsyncClient(
            headers=self._headers, limits=limits, trust_env=False, verify=verify
        )

    async def _request_all(
        self, payloads: Sequence[dict[str, Any]], deadline: float
    ) -> list[_Reply]:
        results = await asyncio.gather(
            *(self._request(p, deadline) for p in payloads), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, _Reply)]

    async def _request(self, payload: dict[str, Any], deadline: float) -> _Reply:
        """One chat completion: retries with back-off and jitter, all within `deadline`."""
        refused = self._breaker.admit()
        if refused is not None:
            raise BackendError(f'vlm_server {self.server}: {refused}')
        body = json.dumps(payload).encode('utf-8')
        attempts = self.options.max_retries + 1
        error = 'no attempt made'
        for attempt in range(attempts):
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                error = f'{error}; deadline of {self.options.timeout_s:.1f} s reached'
                break
            try:
                async with self._semaphore:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0.0:
                        raise _RetryableError('waited for a free connection until the deadline')
                    started = time.monotonic()
                    reply = await asyncio.wait_for(self._attempt(body, remaining), remaining)
                    reply = _Reply(
                        reply.text,
                        reply.token_logprobs,
                        reply.first_top,
                        time.monotonic() - started,
                    )
                self._breaker.success()
                return reply
            except TimeoutError:
                error = f'no reply within {self.options.timeout_s:.1f} s'
                break
            except _LogprobsRefusedError as exc:
                # Ask again without them; scores and verify then say what they cannot know.
                if not self._logprobs_refused:
                    _LOG.warning(
                        'vlm_server %s refuses log-probabilities (%s); asking without them',
                        self.server,
                        exc,
                    )
                self._logprobs_refused = True
                payload = {
                    k: v for k, v in payload.items() if k not in ('logprobs', 'top_logprobs')
                }
                body = json.dumps(payload).encode('utf-8')
                error = f'log-probabilities refused: {exc}'
            except _RetryableError as exc:
                error = str(exc)
                wait = self.options.backoff_s * (2**attempt) * (0.5 + random.random())
                if exc.retry_after_s is not None:
                    wait = max(wait, exc.retry_after_s)
                if attempt + 1 >= attempts or time.monotonic() + wait >= deadline:
                    break
                await asyncio.sleep(wait)
            except BackendError as exc:  # the server answered, but not something usable
                self._breaker.failure(str(exc))
                raise
        self._breaker.failure(error)
        raise BackendError(
            f'vlm_server {self.server}: {error} (after {attempt + 1} of {attempts} attempts)'
        )

    async def _attempt(self, body: bytes, remaining: float) -> _Reply:
        timeout = httpx.Timeout(
            remaining, connect=min(self.options.connect_timeout_s, remaining), pool=remaining
        )
        try:
            response = await self._client.post(self._endpoint, content=body, timeout=timeout)
        except httpx.ConnectError as exc:
            raise _RetryableError(f'cannot connect ({_first_line(exc)})') from exc
        except httpx.ConnectTimeout as exc:
            raise _RetryableError('connection timed out') from exc
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise _RetryableError(f'connection closed mid-reply ({_first_line(exc)})') from exc
        except httpx.HTTPError as exc:
            raise _RetryableError(f'{type(exc).__name__}: {_first_line(exc)}') from exc
        if response.status_code in _RETRY_STATUS:
            raise _RetryableError(
                f'HTTP {response.status_code} {response.reason_phrase}{_error_detail(response)}',
                retry_after_s=_retry_after(response),
            )
        if (
            response.status_code in (400, 422)
            and b'logprob' in response.content.lower()
            and b'"logprobs"' in body
        ):
            raise _LogprobsRefusedError(f'HTTP {response.status_code}{_error_detail(response)}')
        if response.status_code != 200:
            raise BackendError(
                f'vlm_server {self.server}: HTTP {response.status_code} '
                f'{response.reason_phrase}{_error_detail(response)}'
            )
        try:
            document = json.loads(response.content)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _RetryableError(
                f'malformed JSON reply ({exc.msg if hasattr(exc, "msg") else exc}): '
                f'{reply_excerpt(response.text, 120)!r}'
            ) from exc
        return _read_completion(document, self.server)


def _read_completion(document: Any, server: str) -> _Reply:
    """Text and logprobs of choice 0 of a chat-completion document; BackendError otherwise."""
    try:
        choice = document['choices'][0]
        content = choice['message']['content']
    except (KeyError, IndexError, TypeError) as exc:
        raise BackendError(
            f'vlm_server {server}: the reply is not a chat completion: '
            f'{reply_excerpt(json.dumps(document), 200)!r}'
        ) from exc
    if isinstance(content, list):  # content parts
        content = ''.join(str(p.get('text', '')) for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise BackendError(f'vlm_server {server}: reply content is {type(content).__name__}')
    token_logprobs: tuple[float, ...] | None = None
    first_top: tuple[tuple[str, float], ...] | None = None
    logprobs = choice.get('logprobs') if isinstance(choice, dict) else None
    entries = logprobs.get('content') if isinstance(logprobs, dict) else None
    if isinstance(entries, list) and entries:
        values = [e.get('logprob') for e in entries if isinstance(e, dict)]
        numbers = [float(v) for v in values if isinstance(v, (int, float))]
        token_logprobs = tuple(numbers) if numbers else None
        top = entries[0].get('top_logprobs') if isinstance(entries[0], dict) else None
        if isinstance(top, list) and top:
            first_top = tuple(
                (str(t.get('token', '')), float(t['logprob']))
                for t in top
                if isinstance(t, dict) and isinstance(t.get('logprob'), (int, float))
            )
        elif isinstance(entries[0], dict) and isinstance(entries[0].get('logprob'), (int, float)):
            first_top = ((str(entries[0].get('token', '')), float(entries[0]['logprob'])),)
    return _Reply(content, token_logprobs, first_top, 0.0)


def _yes_no_from_top(top: Sequence[tuple[str, float]], text: str) -> YesNo:
    """P(yes) from the first token's top log-probabilities, over the yes/no spellings only.

    A side missing from the list is bounded by the smallest listed log-probability (it was not
    among the most likely tokens).
    """
    yes = [lp for token, lp in top if token.strip().lower() in _YES or token.lower() in _YES]
    no = [lp for token, lp in top if token.strip().lower() in _NO or token.lower() in _NO]
    if not yes and not no:
        raise BackendError(
            f'vlm_server: neither yes nor no among the first answer token candidates '
            f'{[t for t, _ in top][:8]}; reply {reply_excerpt(text, 80)!r}'
        )
    floor = min(lp for _, lp in top) - math.log(2.0)
    scores = [float(np.logaddexp.reduce(yes)) if yes else floor]
    scores.append(float(np.logaddexp.reduce(no)) if no else floor)
    return yes_no_probability(scores, [0], [1])


def _guess_family(model: str) -> str:
    lowered = model.lower().replace('.', '_').replace('-', '_')
    if 'qwen2_5_vl' in lowered:
        return 'qwen2_5_vl'
    if 'qwen3_vl' in lowered:
        return 'qwen3_vl_moe' if '_a3b' in lowered or '_a22b' in lowered else 'qwen3_vl'
    raise ConfigError(
        f'vlm_server cannot tell the model family from the name {model!r}: set the family '
        "option ('qwen2_5_vl', 'qwen3_vl' or 'qwen3_vl_moe')"
    )


def _checked_text(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BackendError(f'vlm_server needs a non-empty description, got {text!r}')
    return ' '.join(text.split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _error_detail(response: httpx.Response) -> str:
    text = reply_excerpt(response.text, 160) if response.content else ''
    return f': {text}' if text else ''


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get('retry-after', '')
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0.0 <= seconds <= 60.0 else None

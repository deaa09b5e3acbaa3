"""A FAULT-INJECTING stand-in for an OpenAI-compatible chat-completions server, for the fault
tests of the vlm_server backend only.

It answers with a reply text the test sets, or with the fault the test asks for: an HTTP status
(429, 503, ...), malformed or truncated JSON, a connection closed mid-reply, a slow answer. It
records every request (decoded JSON body, image size, headers) so tests can count them. The
end-to-end tests use a real server (`transformers serve`), not this.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

__all__ = ['FaultInjectingServer', 'Recorded', 'unused_port']


def unused_port() -> int:
    """A loopback port nothing listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]
    image_size: tuple[int, int] | None


@dataclass
class _Plan:
    reply: str = '{"bbox_2d": null}'
    #: Faults for the next requests, consumed in order: 'status:503', 'malformed', 'truncated',
    #: 'close', 'slow:<seconds>', 'refuse_logprobs' (HTTP 400 when the request asks for them).
    #: When empty, `standing_fault` applies (None = answer normally).
    faults: list[str] = field(default_factory=list)
    standing_fault: str | None = None
    #: Token log-probabilities of the reply, or None to send none (like `transformers serve`).
    logprobs: list[dict[str, Any]] | None = None
    delay_s: float = 0.0


class FaultInjectingServer:
    """Runs in a thread on 127.0.0.1; `url` is its /v1 base URL."""

    def __init__(self) -> None:
        self.plan = _Plan()
        self.requests: list[Recorded] = []
        #: Seconds each request spent in the handler (reading, decoding, answering).
        self.handle_s: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'
            # Headers and body are separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold the body back ~40 ms, which real servers do not.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                del args

            def do_POST(self) -> None:
                started = time.perf_counter()
                length = int(self.headers.get('Content-Length', '0'))
                raw = self.rfile.read(length)
                body = json.loads(raw)
                with server._lock:
                    server.requests.append(
                        Recorded(body, dict(self.headers.items()), _image_size(body))
                    )
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    plan = server.plan
                    fault = plan.faults.pop(0) if plan.faults else plan.standing_fault
                if fault == 'refuse_logprobs':  # like a server that rejects the field
                    fault = 'logprobs_refused' if 'logprobs' in body else None
                try:
                    server._answer(self, fault, plan)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (its deadline): nothing to answer
                finally:
                    with server._lock:
                        server.in_flight -= 1
                        server.handle_s.append(time.perf_counter() - started)

        self._httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.url = f'http://127.0.0.1:{self.port}/v1'
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, handler: BaseHTTPRequestHandler, fault: str | None, plan: _Plan) -> None:
        if plan.delay_s:
            time.sleep(plan.delay_s)
        if fault and fault.startswith('slow:'):
            time.sleep(float(fault.split(':', 1)[1]))
            fault = None
        if fault == 'logprobs_refused':
            message = b'{"error": {"message": "logprobs is not supported"}}'
            _send(handler, 400, message, {})
            return
        if fault and fault.startswith('status:'):
            status = int(fault.split(':', 1)[1])
            _send(handler, status, b'{"error": {"message": "injected"}}', {'Retry-After': '0'})
            return
        choice: dict[str, Any] = {
            'index': 0,
            'message': {'role': 'assistant', 'content': plan.reply},
            'finish_reason': 'stop',
        }
        if plan.logprobs is not None:
            choice['logprobs'] = {'content': plan.logprobs}
        document = json.dumps({'id': 'x', 'object': 'chat.completion', 'choices': [choice]})
        payload = document.encode()
        if fault == 'malformed':
            _send(handler, 200, b'{"choices": [ {"message": oops', {})
        elif fault == 'truncated':
            # Announces the whole body, sends half of it, then closes the connection.
            handler.send_response(200)
            handler.send_header('Content-Type', 'application/json')
            handler.send_header('Content-Length', str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        elif fault == 'close':
            handler.close_connection = True
            handler.connection.shutdown(socket.SHUT_RDWR)
        else:
            _send(handler, 200, payload, {})

    def set_reply(self, reply: str, logprobs: list[dict[str, Any]] | None = None) -> None:
        self.plan.reply = reply
        self.plan.logprobs = logprobs

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _send(
    handler: BaseHTTPRequestHandler, status: int, payload: bytes, headers: dict[str, str]
) -> None:
    handler.send_response(status)
    handler.send_header('Content-Type', 'application/json')
    handler.send_header('Content-Length', str(len(payload)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(payload)


def _image_size(body: dict[str, Any]) -> tuple[int, int] | None:
    for message in body.get('messages', []):
        content = message.get('content')
        if not isinstance(content, list):
            continue
        for part in content:
            if part.get('type') == 'image_url':
                url = part['image_url']['url']
                data = base64.b64decode(url.split(',', 1)[1])
                with Image.open(io.BytesIO(data)) as image:
                    return image.size
    return None

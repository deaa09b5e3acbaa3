"""Cost of the vlm_server backend's client, and one server shared by 1, 4 and 16 robots.

1. Client cost per request for a 640x480 frame: resize + JPEG + base64 (encode), the HTTP round
   trip, parsing; measured against the tests' instant stand-in server (fault_injecting_server.py,
   answering a fixed reply, in its own process), whose own handling time is measured inside it
   and subtracted, so what is left is what the client adds beyond the server's time (target
   <= 15 ms).
2. The same calls against a real `transformers serve` with a tiny random Qwen2.5-VL (the server
   venv of `make install-vlm-server`): the model's time beside the client's.
3. Throughput: 1, 4 and 16 simulated robots (one backend each, as separate robots would have)
   send requests at once to that one server: answered, errors, lost or answered twice, worst
   latency against the timeout.
4. A killed server: time until each command's error, and from the server answering again to the
   first normal answer (target <= 2 s).

The tiny model is random and small, so the server's times say nothing about a real Qwen-VL on a
GPU; they show that the client scales and recovers. Writes the 'vlm_server' section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# The tests' stand-in server and the `transformers serve` helper.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test' / 'backends'))

from bench.report import machine_line, update_section
from grounding_agent.backends.base import create_backend
from grounding_agent.backends.vlm_parsing import parse_reply
from grounding_agent.backends.vlm_server import VlmServerBackend
from grounding_agent.core.errors import BackendError


def _frame(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(480, 640, 3), dtype=np.uint8)
    return image


def _backend(url: str, model: str, **options: Any) -> VlmServerBackend:
    settings: dict[str, Any] = {'base_url': url, 'family': 'qwen2_5_vl'}
    settings.update(options)
    backend = create_backend({'name': 'vlm_server', 'model': model, 'options': settings})
    assert isinstance(backend, VlmServerBackend)
    return backend


def _ms(values: list[float]) -> str:
    return f'{statistics.median(values) * 1e3:.1f} (p90 {np.percentile(values, 90) * 1e3:.1f})'


def _stand_in(reply: str, to_parent: Any, stop: Any) -> None:
    """The tests' stand-in server in its own process (no GIL shared with the client); sends
    its URL, then, once told to stop, the handling time of every request."""
    from fault_injecting_server import FaultInjectingServer

    server = FaultInjectingServer()
    server.set_reply(reply)
    to_parent.put(server.url)
    stop.wait()
    to_parent.put((list(server.handle_s), server.requests[-1].image_size))
    server.close()


def client_cost(repeats: int) -> dict[str, Any]:
    import multiprocessing

    reply = '{"bbox_2d": [100, 120, 300, 340]}'
    context = multiprocessing.get_context('fork')
    queue, stop = context.Queue(), context.Event()
    process = context.Process(target=_stand_in, args=(reply, queue, stop), daemon=True)
    process.start()
    url = queue.get(timeout=60)
    backend = _backend(url, 'stand-in', timeout_s=10.0)
    frames = [_frame(seed) for seed in range(4)]
    encode_s, parse_s, total_s = [], [], []
    try:
        for index in range(repeats + 5):
            frame = frames[index % len(frames)]
            started = time.perf_counter()
            encoded = backend._encode(frame)
            encode_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            parse_reply(reply)
            parse_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            detection = backend.ground_expression(frame, 'the red cube')
            total_s.append(time.perf_counter() - started)
            assert detection is not None
    finally:
        backend.close()
        stop.set()
        handle_s, size = queue.get(timeout=60)
        process.join(timeout=10)
    warm = 5  # connection set-up and first imports
    beyond_s = [t - h for t, h in zip(total_s, handle_s, strict=True)]
    return {
        'encode': encode_s[warm:],
        'parse': parse_s[warm:],
        'total': total_s[warm:],
        'beyond': beyond_s[warm:],
        'sent': size,
        'payload_kb': len(encoded.data_url) / 1024,
    }


def _served(directory: Path) -> Any:
    from served_vlm import ServedVlm

    served = ServedVlm(directory)
    served.start()
    return served


def model_cost(served: Any, repeats: int) -> dict[str, list[float]]:
    backend = _backend(served.url, served.model, timeout_s=120.0, max_tokens=16)
    frame = _frame(0)
    total_s, server_s, outcomes = [], [], []
    try:
        for index in range(repeats + 2):
            started = time.perf_counter()
            try:
                backend.ground_expression(frame, 'the red cube')
                outcomes.append('answer')
            except BackendError as exc:  # a random model's unreadable reply
                outcomes.append('unreadable' if 'model reply' in str(exc) else str(exc))
            if index >= 2:
                total_s.append(time.perf_counter() - started)
                server_s.append(backend.last_server_s)
    finally:
        backend.close()
    transport = [o for o in outcomes if o not in ('answer', 'unreadable')]
    assert not transport, transport
    return {'total': total_s, 'server': server_s}


def fleet(served: Any, robots: int, per_robot: int, timeout_s: float) -> dict[str, Any]:
    backends = [
        _backend(served.url, served.model, timeout_s=timeout_s, max_tokens=16, max_concurrent=1)
        for _ in range(robots)
    ]
    answers: dict[str, list[str]] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    frame = _frame(1)

    def robot(index: int) -> None:
        for request in range(per_robot):
            key = f'robot{index}-{request}'
            started = time.perf_counter()
            try:
                backends[index].ground_expression(frame, f'object {key}')
                outcome = 'answered'
            except BackendError as exc:
                outcome = 'answered' if 'model reply' in str(exc) else f'error: {exc}'
            with lock:
                answers.setdefault(key, []).append(outcome)
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=robot, args=(i,)) for i in range(robots)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for backend in backends:
        backend.close()
    sent = robots * per_robot
    return {
        'robots': robots,
        'sent': sent,
        'answered': sum(1 for a in answers.values() for o in a if o == 'answered'),
        'errors': sum(1 for a in answers.values() for o in a if o != 'answered'),
        'lost': sent - len(answers),
        'twice': sum(1 for a in answers.values() if len(a) > 1),
        'throughput': sent / elapsed,
        'median_s': statistics.median(latencies),
        'worst_s': max(latencies),
        'timeout_s': timeout_s,
    }


def outage(served: Any, timeout_s: float) -> dict[str, Any]:
    backend = _backend(
        served.url,
        served.model,
        timeout_s=timeout_s,
        max_tokens=16,
        breaker_failures=2,
        breaker_reset_s=0.5,
    )
    frame = _frame(2)

    def call() -> tuple[str, float]:
        started = time.perf_counter()
        try:
            backend.ground_expression(frame, 'the cube')
            outcome = 'answer'
        except BackendError as exc:
            outcome = 'answer' if 'model reply' in str(exc) else 'error'
        return outcome, time.perf_counter() - started

    try:
        assert call()[0] == 'answer'
        served.kill()
        errors = [call() for _ in range(3)]
        served.start()  # returns once /health answers
        back_at = time.perf_counter()
        first = None
        while time.perf_counter() - back_at < 60.0:
            outcome, _ = call()
            if outcome == 'answer':
                first = time.perf_counter() - back_at
                break
            time.sleep(0.05)
    finally:
        backend.close()
    return {'errors': errors, 'first_answer_s': first}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeats', type=int, default=40)
    parser.add_argument('--per-robot', type=int, default=4)
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    cost = client_cost(args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        served = _served(Path(tmp) / 'tiny-qwen2_5_vl')
        try:
            model = model_cost(served, max(5, args.repeats // 4))
            fleets = [fleet(served, n, args.per_robot, timeout_s=120.0) for n in (1, 4, 16)]
            down = outage(served, timeout_s=5.0)
        finally:
            served.kill()
    load_after = os.getloadavg()[0]
    lines = [
        '## vlm_server: client cost and one server for several robots',
        '',
        f'{machine_line()}; load average {load_before:.1f} before, {load_after:.1f} after '
        '(other jobs were running). `python bench/bench_vlm_server.py`; frames: uniform random '
        'noise 640x480 from numpy seeds 0-3 (noise is the worst case for JPEG size).',
        '',
        f'Client cost per request, 640x480 frame (sent as {cost["sent"][0]}x{cost["sent"][1]}, '
        f"{cost['payload_kb']:.0f} kB of base64 JPEG), against the tests' instant stand-in "
        f'server (own process), {len(cost["total"])} requests, median (p90) ms:',
        '',
        "| encode (resize, JPEG, base64) | parse the reply | whole call | beyond the server's "
        'own handling (target <= 15) |',
        '|---|---|---|---|',
        f'| {_ms(cost["encode"])} | {_ms(cost["parse"])} | {_ms(cost["total"])} | '
        f'{_ms(cost["beyond"])} |',
        '',
        'Against `transformers serve` (transformers 5.23, CPU) with the tiny random Qwen2.5-VL of '
        'the tests (hidden size 32; its times say nothing about a real model on a GPU), '
        f'`max_tokens` 16, {len(model["total"])} requests, median (p90) ms:',
        '',
        "| whole call | HTTP round trip (the server's time + loopback) | client share |",
        '|---|---|---|',
        f'| {_ms(model["total"])} | {_ms(model["server"])} | '
        f'{statistics.median(model["total"]) - statistics.median(model["server"]):.3f} s |',
        '',
        f'Simulated robots (one backend each, `max_concurrent` 1), {args.per_robot} requests '
        'each, all at once, against that one server:',
        '',
        '| robots | requests | answered | errors | lost | answered twice | requests/s | '
        'median latency s | worst latency s (timeout) |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for f in fleets:
        lines.append(
            f'| {f["robots"]} | {f["sent"]} | {f["answered"]} | {f["errors"]} | {f["lost"]} | '
            f'{f["twice"]} | {f["throughput"]:.2f} | {f["median_s"]:.2f} | '
            f'{f["worst_s"]:.2f} ({f["timeout_s"]:.0f}) |'
        )
    error_times = ', '.join(f'{t:.2f} s ({o})' for o, t in down['errors'])
    first = down['first_answer_s']
    lines += [
        '',
        f'Killed server (SIGKILL), `timeout_s` 5, breaker after 2 failures, reset 0.5 s: the '
        f'next three commands ended in {error_times}; after the restarted server answered '
        '`/health`, the first normal answer came '
        + ('never (within 60 s)' if first is None else f'{first:.2f} s later')
        + ' (target <= 2 s).',
        '',
        'Answered includes replies the random model wrote that the parser cannot read (an '
        '`error` about the reply, not about the link); errors are transport failures.',
    ]
    text = '\n'.join(lines)
    print(text)
    if not args.no_write:
        update_section('vlm_server', text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main(sys.argv[1:]))

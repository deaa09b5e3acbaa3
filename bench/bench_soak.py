"""Soak: grounding_node under a 30 Hz camera and a steady mix of commands for a long time.

Three processes over real DDS: a camera publishing a rendered 640x480 scene at 30 Hz
(`live_harness.CameraProcess`), the node as `ros2 run` starts it (default `color_shape`
backend), and this script, which sends a mix of commands (find, count, spatial questions,
track / stop, malformed JSON, JSON nested 10,000 levels deep, unknown cameras, over-long
commands, and every few minutes a burst of 50) and reads every answer on the planner topic.
Every minute it records the node's resident memory. At the end the node gets SIGINT.

Reports: commands sent, answered exactly once / never / more than once, answers by status,
answer time (send to receipt) p50/p95/max, resident memory per minute and its drift after
warm-up, the node's exit code, and the machine load (`uptime`). Run by hand (not in `make
bench`): `nice -n 10 python bench/bench_soak.py --minutes 30`; `--minutes 2` for a quick look.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.live_harness import (  # noqa: E402
    CameraProcess,
    NodeProcess,
    dds_env,
    proc_sample,
    render_sequence,
    wait_until,
)
from bench.report import machine_line, update_section  # noqa: E402

#: The scene (generate_scene seed) the camera shows; the commands name its kinds of objects.
SCENE_SEED = 3
NAMESPACE = '/soak'
PLANNER_TOPIC = '/soak/planner'
WARM_UP_MIN = 5

#: (weight, kind, message maker): what an operator and a misbehaving client send.
MIX: list[tuple[int, str, Any]] = [
    (30, 'find', lambda rid: json.dumps({'text': 'find the red cube', 'request_id': rid})),
    (
        15,
        'count',
        lambda rid: json.dumps({'text': 'how many cubes are there?', 'request_id': rid}),
    ),
    (
        15,
        'spatial',
        lambda rid: json.dumps(
            {'text': 'is the red cube left of the blue ball?', 'request_id': rid}
        ),
    ),
    (10, 'absent', lambda rid: json.dumps({'text': 'find the purple duck', 'request_id': rid})),
    (5, 'track', lambda rid: json.dumps({'text': 'track the red cube', 'request_id': rid})),
    (5, 'stop', lambda rid: json.dumps({'text': 'stop', 'request_id': rid})),
    (5, 'bad_json', lambda rid: '{"request_id": "' + rid + '", "text": '),
    (
        3,
        'deep_json',
        lambda rid: '{"request_id": "' + rid + '", "a": ' + '[' * 10_000 + ']' * 10_000 + '}',
    ),
    (
        4,
        'unknown_camera',
        lambda rid: json.dumps({'text': 'find it', 'request_id': rid, 'camera': 'roof'}),
    ),
    (3, 'too_long', lambda rid: json.dumps({'text': 'find ' + 'x' * 5000, 'request_id': rid})),
    (5, 'array', lambda rid: json.dumps([{'text': 'find the red cube', 'request_id': rid}])),
]


class Operator:
    """Sends commands and collects the planner's answers (reliable, keep-all both ways)."""

    def __init__(self, env: dict[str, str]) -> None:
        os.environ.update({k: v for k, v in env.items() if k.startswith(('ROS_', 'RMW_', 'FAST'))})
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from rclpy.signals import SignalHandlerOptions
        from std_msgs.msg import String

        self._string = String
        rclpy.init(args=None, signal_handler_options=SignalHandlerOptions.NO)
        qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
        self.node = rclpy.create_node('soak_operator')
        self.commands = self.node.create_publisher(
            String, f'{NAMESPACE}/grounding_node/command', qos
        )
        self.node.create_subscription(String, PLANNER_TOPIC, self._on_answer, qos)
        self.sent: dict[str, tuple[str, float]] = {}  # request id -> (kind, send time)
        self.answers: dict[str, list[tuple[str, str, float]]] = collections.defaultdict(list)
        self.standing = 0
        self._lock = threading.Lock()
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._executor.spin, daemon=True)
        self._thread.start()

    def _on_answer(self, msg: Any) -> None:
        received = time.monotonic()
        document = json.loads(msg.data)
        request_id = str(document.get('request_id', ''))
        with self._lock:
            if request_id == 'standing':
                self.standing += 1
                return
            reason = str(document.get('reason', ''))
            status = 'busy' if reason.startswith('busy') else str(document.get('status'))
            self.answers[request_id].append((status, reason[:120], received))

    def send(self, request_id: str, kind: str, message: str) -> None:
        with self._lock:
            self.sent[request_id] = (kind, time.monotonic())
        self.commands.publish(self._string(data=message))

    def connected(self) -> bool:
        return self.commands.get_subscription_count() > 0

    def close(self) -> None:
        import rclpy

        self._executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float('nan')
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(minutes: float, rate_hz: float, seed: int, domain_id: int | None) -> dict[str, Any]:
    rng = random.Random(seed)
    env = dds_env(domain_id)
    _, frames_path = render_sequence('still', SCENE_SEED, rate_hz=30.0, frames=1)
    parameters = {
        'planner_topic': PLANNER_TOPIC,
        'camera.front.image_topic': f'{NAMESPACE}/front/image',
        'image_qos': 'reliable',
        f'qos_overrides.{PLANNER_TOPIC}.publisher.history': 'keep_all',
    }
    camera = CameraProcess(
        frames_path,
        topics=[f'{NAMESPACE}/front/image'],
        rate_hz=30.0,
        env=env,
        count=int((minutes + 3) * 60 * 30),
    )
    node = NodeProcess(parameters, env=env, namespace=NAMESPACE)
    operator = Operator(env)
    node.start()
    camera.start()
    memory: list[tuple[float, int]] = []
    ids = itertools.count()
    weights = [weight for weight, _, _ in MIX]
    started = time.monotonic()
    try:
        if not wait_until(lambda: operator.connected() or not node.alive(), 120.0):
            raise RuntimeError(f'the node never subscribed:\n{node.log()[-2000:]}')
        time.sleep(5.0)  # the camera's first frames arrive
        started = time.monotonic()
        next_sample = started
        next_burst = started + 120.0
        deadline = started + minutes * 60.0
        while time.monotonic() < deadline and node.alive():
            now = time.monotonic()
            if now >= next_sample:
                memory.append(((now - started) / 60.0, proc_sample(node.pid).rss_bytes))
                next_sample += 60.0
            if now >= next_burst:
                for _ in range(50):
                    request_id = f's{next(ids)}'
                    operator.send(request_id, 'burst', MIX[0][2](request_id))
                next_burst += 180.0
            _, kind, make = rng.choices(MIX, weights=weights)[0]
            request_id = f's{next(ids)}'
            operator.send(request_id, kind, make(request_id))
            time.sleep(rng.expovariate(rate_hz))
        if node.alive():
            memory.append(((time.monotonic() - started) / 60.0, proc_sample(node.pid).rss_bytes))
        # answers still on their way: at most command_timeout_s (5 s) plus delivery
        wait_until(lambda: len(operator.answers) >= len(operator.sent), 30.0)
        died = not node.alive()
    finally:
        exit_code = node.stop(timeout_s=30.0)
        camera.stop()
        time.sleep(1.0)  # the shutdown answers of commands still queued
        operator.close()
    return summarise(operator, memory, exit_code, died, node.log(), minutes, rate_hz, seed)


def summarise(
    operator: Operator,
    memory: list[tuple[float, int]],
    exit_code: int,
    died: bool,
    log: str,
    minutes: float,
    rate_hz: float,
    seed: int,
) -> dict[str, Any]:
    sent = operator.sent
    answers = operator.answers
    once = sum(1 for rid in sent if len(answers.get(rid, [])) == 1)
    never = [rid for rid in sent if not answers.get(rid)]
    twice = [rid for rid in sent if len(answers.get(rid, [])) > 1]
    stray = [rid for rid in answers if rid not in sent]
    statuses: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    latencies: list[float] = []
    for rid, (kind, sent_s) in sent.items():
        for status, _, received_s in answers.get(rid, [])[:1]:
            statuses[status] += 1
            by_kind[kind][status] += 1
            if kind in ('find', 'count', 'spatial', 'absent', 'track'):
                latencies.append((received_s - sent_s) * 1000.0)
    after_warm_up = [(minute, rss) for minute, rss in memory if minute >= WARM_UP_MIN]
    drift, trend, first_last = memory_trend(after_warm_up)
    reasons: collections.Counter[str] = collections.Counter()
    for rid in sent:
        for status, reason, _ in answers.get(rid, [])[:1]:
            if status == 'error':
                reasons[reason_kind(reason)] += 1
    return {
        'minutes': minutes,
        'rate_hz': rate_hz,
        'seed': seed,
        'scene_seed': SCENE_SEED,
        'sent': len(sent),
        'answered_once': once,
        'unanswered': len(never),
        'unanswered_ids': never[:20],
        'duplicated': len(twice),
        'stray_answers': len(stray),
        'statuses': dict(statuses),
        'by_kind': {kind: dict(counter) for kind, counter in sorted(by_kind.items())},
        'standing_results': operator.standing,
        'latency_ms': {
            'p50': _percentile(latencies, 0.5),
            'p95': _percentile(latencies, 0.95),
            'max': max(latencies, default=float('nan')),
        },
        'rss_mb_per_minute': [(round(m, 1), round(rss / 2**20, 1)) for m, rss in memory],
        'rss_drift_after_warm_up_pct': drift,
        'rss_trend_mb_per_hour': trend,
        'rss_last_vs_first_5_min_pct': first_last,
        'error_reasons': dict(reasons.most_common(10)),
        'node_died': died,
        'exit_code': exit_code,
        'tracebacks_in_log': log.count('Traceback'),
        'load': os.getloadavg(),
    }


def memory_trend(samples: list[tuple[float, int]]) -> tuple[float, float, float]:
    """Of (minute, bytes) samples: max - min over min (%), the least-squares slope (MB per
    hour), and the mean of the last five samples against the first five (%)."""
    if len(samples) < 2:
        return float('nan'), float('nan'), float('nan')
    values = [rss for _, rss in samples]
    drift = (max(values) - min(values)) / min(values) * 100.0
    minutes = [minute for minute, _ in samples]
    mean_t, mean_v = sum(minutes) / len(minutes), sum(values) / len(values)
    spread = sum((t - mean_t) ** 2 for t in minutes) or 1.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread
    first, last = values[:5], values[-5:]
    first_last = (sum(last) / len(last) - sum(first) / len(first)) / (sum(first) / len(first))
    return drift, slope * 60.0 / 2**20, first_last * 100.0


def reason_kind(reason: str) -> str:
    """An error reason without its particulars (ids, numbers, names in quotes)."""
    if reason.startswith('timed out'):
        return reason.split(':')[0].split(' (')[0] + (
            ' (model busy)' if 'waiting for the model' in reason else ' (model still working)'
        )
    if reason.startswith('no image from camera'):
        return 'no image from the camera in time'
    return ' '.join(reason.split()[:5]).rstrip(':;,')


def markdown(report: dict[str, Any]) -> str:
    latency = report['latency_ms']
    rss = report['rss_mb_per_minute']
    rss_line = ', '.join(f'{minute:g}: {mb:g}' for minute, mb in rss)
    kinds = '\n'.join(
        f'| {kind} | {", ".join(f"{s} {n}" for s, n in sorted(counts.items()))} |'
        for kind, counts in report['by_kind'].items()
    )
    load = ', '.join(f'{value:.2f}' for value in report['load'])
    deaths = (
        f'{int(report["node_died"])}; exit code on SIGINT {report["exit_code"]}; '
        f'tracebacks in its log {report["tracebacks_in_log"]}'
    )
    times = (
        f'p50 {latency["p50"]:.0f} ms, p95 {latency["p95"]:.0f} ms, max {latency["max"]:.0f} ms'
    )
    drift = (
        f'{report["rss_trend_mb_per_hour"]:+.1f} MB per hour (least squares); last 5 minutes '
        f'{report["rss_last_vs_first_5_min_pct"]:+.1f} % against the first 5; spread '
        f'{report["rss_drift_after_warm_up_pct"]:.1f} % (max - min over min)'
    )
    errors = '; '.join(f'{kind}: {count}' for kind, count in report['error_reasons'].items())
    errors = errors or 'not recorded in this run'
    return f"""## Soak: commands under a 30 Hz camera (`bench/bench_soak.py`)

{machine_line()}; load average at the end {load} (other jobs shared the 2 cores).
{report['minutes']:g} minutes: camera 640x480 rgb8 at 30 Hz (reliable, still scene seed
{report['scene_seed']}), `color_shape` backend, default parameters; commands at
{report['rate_hz']:g}/s on average (mix seed {report['seed']}) plus a burst of 50 every 3 minutes.

| | |
|---|---|
| commands sent | {report['sent']} |
| answered exactly once | {report['answered_once']} |
| never answered | {report['unanswered']} |
| answered more than once | {report['duplicated']} |
| node deaths | {deaths} |
| answer time (model commands, send to receipt) | {times} |
| standing-query results heard | {report['standing_results']} |
| resident memory after minute {WARM_UP_MIN} | {drift} |

Answers by kind of command:

| command | answers |
|---|---|
{kinds}

Errors by reason (the first answer of each command): {errors}. Malformed, deep, array,
unknown-camera and over-long commands are refused on purpose; "cannot recognise" is the
`color_shape` backend's closed vocabulary ('duck'); a deadline (`command_timeout_s`, 5 s) says
whether no frame came or the model was busy. The deadline counts from the moment the node reads
a command; the answer times above also hold the time it waited in the middleware.

Resident memory of the node (minute: MB): {rss_line}.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=30.0)
    parser.add_argument('--rate', type=float, default=3.0, help='commands per second (mean)')
    parser.add_argument('--seed', type=int, default=12, help='seed of the command mix')
    parser.add_argument('--domain-id', type=int, default=None)
    parser.add_argument('--json', type=Path, default=None, help='also write the report here')
    parser.add_argument('--no-write', action='store_true', help='do not touch benchmarks.md')
    args = parser.parse_args(argv)
    report = run(args.minutes, args.rate, args.seed, args.domain_id)
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    if not args.no_write:
        update_section('soak', markdown(report))
    ok = report['unanswered'] == 0 and report['duplicated'] == 0 and not report['node_died']
    return 0 if ok else 1


if __name__ == '__main__':
    raise SystemExit(main())

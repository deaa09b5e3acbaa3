"""Pieces of the live benchmarks: camera frames over real DDS, the node and a bare subscriber as
separate processes, and each process's CPU time and resident memory read from /proc.

- `render_sequence` renders a PyBullet sequence (or a still scene) ahead of time into a
  `RenderedSequence` (images plus the simulator's truth per frame), cached on disk as `.npz`,
  so what a benchmark measures is the node, not the renderer.
- `CameraProcess` publishes those frames at a fixed rate on one or more Image topics (and
  optionally CameraInfo), stamping each frame with the system clock when it is sent; it
  reports which frame index went out with which stamp, so a result's stamp names its frame.
- `PassthroughProcess` is the reference: a bare rclpy subscriber that only counts the frames it
  receives (per topic, with their stamps) and its own CPU seconds.
- `NodeProcess` starts `grounding_node` as the robot runs it (its own process, parameters
  from a params file).
- `proc_sample(pid)` reads CPU seconds, resident memory (now and peak) and per-thread CPU.

Every process gets the caller's environment plus `dds_env(...)`: ROS_DOMAIN_ID and the Fast DDS
profile. Run `python bench/live_harness.py --help` for the child processes' own command lines.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

__all__ = [
    'CAMERA_PROFILE',
    'CameraProcess',
    'NodeProcess',
    'PassthroughProcess',
    'ProcSample',
    'RenderedSequence',
    'dds_env',
    'proc_sample',
    'render_sequence',
    'running',
    'wait_until',
]

#: The Fast DDS profile the launch files and the demo select (docs/ros_interface.md).
CAMERA_PROFILE = REPO / 'config' / 'dds' / 'fastdds_camera.xml'
#: Where rendered frames are kept between runs (keyed by what was rendered).
CACHE_DIR = Path(tempfile.gettempdir()) / 'grounding_agent_frames'
_CLK_TCK = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100
_PAGE = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096


def wait_until(predicate: Any, timeout_s: float, poll_s: float = 0.05) -> bool:
    """Poll `predicate()` until true or `timeout_s` passes; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return bool(predicate())


# -- frames rendered ahead of time ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RenderedSequence:
    """Frames of one scene at a fixed camera rate, with the simulator's truth per frame.

    `images` is (N, H, W, 3) uint8 RGB; `truth[i]` is `Render.to_dict()` of frame i (boxes,
    visibility, intrinsics; scene time `stamp_s = i / rate_hz`); `target` names the object the
    sequence is about ('' for a still scene).
    """

    kind: str
    seed: int
    rate_hz: float
    images: npt.NDArray[np.uint8]
    truth: list[dict[str, Any]]
    target: str = ''

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def save(self, path: Path) -> None:
        meta = {'kind': self.kind, 'seed': self.seed, 'rate_hz': self.rate_hz}
        meta['target'] = self.target
        tmp = path.with_name(path.name + '.part.npz')
        np.savez(tmp, images=self.images, truth=json.dumps(self.truth), meta=json.dumps(meta))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> RenderedSequence:
        with np.load(path) as data:
            meta = json.loads(str(data['meta']))
            return cls(
                kind=meta['kind'],
                seed=int(meta['seed']),
                rate_hz=float(meta['rate_hz']),
                images=np.ascontiguousarray(data['images']),
                truth=json.loads(str(data['truth'])),
                target=meta['target'],
            )


def render_sequence(
    kind: str,
    seed: int,
    *,
    rate_hz: float,
    width: int = 640,
    height: int = 480,
    frames: int | None = None,
    cache_dir: Path | None = CACHE_DIR,
) -> tuple[RenderedSequence, Path]:
    """Render `kind` ('still' or one of `grounding_agent.sim.sequences.SEQUENCE_KINDS`) at
    `rate_hz`; returns the sequence and its `.npz` file (reused when already rendered).

    A moving sequence covers its `duration_s`; a still scene (`generate_scene(seed)`) gives
    `frames` identical renders (default 1). `frames` also caps a moving sequence.
    """
    from grounding_agent.sim.scene import generate_scene
    from grounding_agent.sim.sequences import make_tracking_sequence
    from grounding_agent.sim.world import SimWorld

    key = f'{kind}-{seed}-{width}x{height}-{rate_hz:g}hz-{frames}'
    # the simulator's own code is part of the key: a changed scene renders anew
    sources = sorted((REPO / 'grounding_agent' / 'sim').glob('*.py'))
    digest = hashlib.sha1(key.encode() + b''.join(p.read_bytes() for p in sources)).hexdigest()
    digest = digest[:8]
    directory = cache_dir or Path(tempfile.mkdtemp(prefix='grounding_agent_frames'))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f'{key}-{digest}.npz'
    if path.exists():
        return RenderedSequence.load(path), path
    if kind == 'still':
        spec = generate_scene(seed).with_resolution(width, height)
        count = frames or 1
    else:
        spec = make_tracking_sequence(kind, seed, width=width, height=height)
        count = int(spec.duration_s * rate_hz) + 1
        count = min(count, frames) if frames else count
    images: list[npt.NDArray[np.uint8]] = []
    truth: list[dict[str, Any]] = []
    with SimWorld(spec) as world:
        for index in range(count):
            if kind != 'still' or index == 0:
                world.set_time(index / rate_hz if kind != 'still' else 0.0)
                render = world.render()
            images.append(render.rgb)
            truth.append(render.to_dict())
    sequence = RenderedSequence(
        kind=kind,
        seed=seed,
        rate_hz=rate_hz,
        images=np.stack(images),
        truth=truth,
        target=spec.target or '',
    )
    sequence.save(path)
    return sequence, path


# -- environment ------------------------------------------------------------------------------


def dds_env(domain_id: int | None = None, profile: Path | str | None = None) -> dict[str, str]:
    """The caller's environment with ROS_DOMAIN_ID and the Fast DDS XML profile set.

    `profile` None keeps whatever the environment says; '' removes any profile (Fast DDS
    defaults); a path selects that file.
    """
    env = dict(os.environ)
    if domain_id is not None:
        env['ROS_DOMAIN_ID'] = str(domain_id)
    if profile is not None:
        for name in ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE'):
            env.pop(name, None)
        if str(profile):
            env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(profile)
        env.pop('RMW_FASTRTPS_USE_QOS_FROM_XML', None)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env['PYTHONUNBUFFERED'] = '1'
    return env


# -- /proc ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    """One look at a process: CPU seconds (user + system, all threads), resident memory now and
    its peak (bytes), and CPU seconds per thread (tid -> (thread name, seconds))."""

    pid: int
    cpu_s: float
    rss_bytes: int
    peak_rss_bytes: int
    threads: dict[int, tuple[str, float]] = field(default_factory=dict)

    def busiest_threads(self, count: int = 4) -> list[tuple[str, float]]:
        ranked = sorted(self.threads.values(), key=lambda item: -item[1])
        return ranked[:count]


def _stat_cpu_s(stat_text: str) -> tuple[str, float]:
    # the name is in parentheses and may contain spaces: split after the last ')'
    name = stat_text[stat_text.index('(') + 1 : stat_text.rindex(')')]
    fields = stat_text[stat_text.rindex(')') + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return name, (utime + stime) / _CLK_TCK


def proc_sample(pid: int, *, threads: bool = False) -> ProcSample:
    """CPU and memory of process `pid` from /proc (Linux); raises OSError when it is gone."""
    base = Path(f'/proc/{pid}')
    _, cpu_s = _stat_cpu_s((base / 'stat').read_text())
    rss = peak = 0
    for line in (base / 'status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            rss = int(line.split()[1]) * 1024
        elif line.startswith('VmHWM:'):
            peak = int(line.split()[1]) * 1024
    per_thread: dict[int, tuple[str, float]] = {}
    if threads:
        for task in (base / 'task').iterdir():
            with contextlib.suppress(OSError, ValueError):
                per_thread[int(task.name)] = _stat_cpu_s((task / 'stat').read_text())
    return ProcSample(pid=pid, cpu_s=cpu_s, rss_bytes=rss, peak_rss_bytes=peak, threads=per_thread)


# -- child processes --------------------------------------------------------------------------


class _Child:
    """A child process of this file (or any command) with its log and a JSON report file."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], name: str) -> None:
        self.name = name
        self._dir = Path(tempfile.mkdtemp(prefix=f'live_{name}_'))
        self.report_path = self._dir / 'report.json'
        self.log_path = self._dir / 'log.txt'
        self._argv = [*argv]
        self._env = dict(env)
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        log = self.log_path.open('wb')
        self.process = subprocess.Popen(
            self._argv, env=self._env, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO)
        )
        log.close()

    @property
    def pid(self) -> int:
        assert self.process is not None, 'not started'
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def sample(self, *, threads: bool = False) -> ProcSample:
        return proc_sample(self.pid, threads=threads)

    def stop(self, *, timeout_s: float = 30.0, sig: int = signal.SIGINT) -> int:
        """Signal the process (SIGINT: a clean stop), wait, and return its exit code."""
        process = self.process
        if process is None:
            return -1
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.returncode = process.returncode
        return process.returncode

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None, 'not started'
        self.returncode = self.process.wait(timeout_s)
        return self.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def report(self) -> dict[str, Any]:
        """The JSON report the process wrote on exit ({} when it wrote none)."""
        if not self.report_path.exists():
            return {}
        return dict(json.loads(self.report_path.read_text()))

    def __enter__(self) -> _Child:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CameraProcess(_Child):
    """Publishes the frames of a `.npz` file (see `RenderedSequence`) at `rate_hz` on `topics`.

    Frames go out in order, wrapping around, `count` in all (default: each frame once); every
    topic gets the same frame with the same stamp per tick (the system clock at send time). The
    publisher waits (up to `wait_subscribers_s`) until each topic has `subscribers` readers
    before the first frame, and stops when done or on SIGINT. Its report: `published`,
    `stamps` ([frame index, sec, nanosec] per tick), `late` (ticks sent more than one period
    after their time) and `cpu_s`.
    `qos` is 'reliable' or 'best_effort'; `depth` its history depth. `camera_info_topics`
    (one per image topic, optional) get CameraInfo from the truth's intrinsics.
    """

    def __init__(
        self,
        frames: Path,
        *,
        topics: Sequence[str],
        rate_hz: float,
        env: Mapping[str, str],
        count: int | None = None,
        qos: str = 'reliable',
        depth: int = 1,
        subscribers: int = 1,
        wait_subscribers_s: float = 60.0,
        camera_info_topics: Sequence[str] = (),
        frame_id: str = 'sim_camera_optical_frame',
    ) -> None:
        argv = [
            sys.executable, __file__, 'camera', str(frames), '--rate', str(rate_hz),
            '--qos', qos, '--depth', str(depth), '--subscribers', str(subscribers),
            '--wait-subscribers', str(wait_subscribers_s), '--frame-id', frame_id,
        ]  # fmt: skip
        if count is not None:
            argv += ['--count', str(count)]
        for topic in topics:
            argv += ['--topic', topic]
        for topic in camera_info_topics:
            argv += ['--camera-info-topic', topic]
        super().__init__(argv, env=env, name='camera')
        self._argv += ['--report', str(self.report_path)]

    def frame_of_stamp(self) -> dict[tuple[int, int], int]:
        """(sec, nanosec) -> frame index, from the report (after the process ended)."""
        return {(sec, nsec): index for index, sec, nsec in self.report().get('stamps', [])}


class PassthroughProcess(_Child):
    """The reference subscriber: bare rclpy, counts frames per topic, nothing else.

    `executor` is 'single' (rclpy's SingleThreadedExecutor, what `rclpy.spin` uses) or
    'events' (rclpy.experimental.EventsExecutor). Its report, written on SIGINT: per topic
    `received` and `stamps` ([sec, nanosec] of each frame received), and `cpu_s`.
    """

    def __init__(
        self,
        *,
        topics: Sequence[str],
        env: Mapping[str, str],
        qos: str = 'reliable',
        depth: int = 1,
        executor: str = 'single',
    ) -> None:
        argv = [sys.executable, __file__, 'passthrough', '--qos', qos, '--depth', str(depth)]
        argv += ['--executor', executor]
        for topic in topics:
            argv += ['--topic', topic]
        super().__init__(argv, env=env, name='passthrough')
        self._argv += ['--report', str(self.report_path)]

    def ready(self) -> bool:
        """Whether the subscriber is up (it writes a line to its log once subscribed)."""
        return 'subscribed' in self.log()


class NodeProcess(_Child):
    """`grounding_node` in its own process, with `parameters` written to a params file.

    `namespace` places it (its command topic is `<namespace>/grounding_node/command`).
    """

    def __init__(
        self,
        parameters: Mapping[str, Any],
        *,
        env: Mapping[str, str],
        namespace: str = '/',
        node_name: str = 'grounding_node',
    ) -> None:
        import yaml

        super().__init__([], env=env, name='node')
        params_path = self._dir / 'params.yaml'
        params_path.write_text(
            yaml.safe_dump({'/**': {'ros__parameters': dict(parameters)}}, sort_keys=True)
        )
        self._argv = [
            sys.executable, '-m', 'grounding_agent.ros.grounding_node', '--ros-args',
            '-r', f'__ns:={namespace}', '-r', f'__node:={node_name}',
            '--params-file', str(params_path),
        ]  # fmt: skip


@contextlib.contextmanager
def running(*children: _Child) -> Iterator[tuple[_Child, ...]]:
    """Start the children in order; stop them in reverse order on exit."""
    started: list[_Child] = []
    try:
        for child in children:
            child.start()
            started.append(child)
        yield children
    finally:
        for child in reversed(started):
            child.stop()


# -- the child processes' own code ------------------------------------------------------------


def _qos(kind: str, depth: int) -> Any:
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliability = {
        'reliable': ReliabilityPolicy.RELIABLE,
        'best_effort': ReliabilityPolicy.BEST_EFFORT,
    }[kind]
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)


class _Stop:
    """SIGINT / SIGTERM set a flag the child's loop polls (no exception mid-callback)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        signal.signal(signal.SIGINT, self._set)
        signal.signal(signal.SIGTERM, self._set)

    def _set(self, *_args: object) -> None:
        self.event.set()


def _camera_main(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import CameraInfo, Image

    from grounding_agent.core.types import CameraIntrinsics
    from grounding_agent.ros.image_conversion import image_msg_from_array
    from grounding_agent.ros.sim_camera import camera_info_msg

    sequence = RenderedSequence.load(Path(args.frames))
    rclpy.init(args=None, signal_handler_options=SignalHandlerOptions.NO)
    stop = _Stop()
    node = rclpy.create_node('live_camera')
    qos = _qos(args.qos, args.depth)
    publishers = [node.create_publisher(Image, topic, qos) for topic in args.topic]
    info_publishers = [node.create_publisher(CameraInfo, t, qos) for t in args.camera_info_topic]
    # Built once: each tick only sets the stamp (a message from an array costs ~0.1 ms, but
    # the publisher should cost as little as a camera driver does).
    messages: list[Image] = []
    infos: list[CameraInfo] = []
    for index in range(len(sequence)):
        msg = image_msg_from_array(sequence.images[index])
        msg.header.frame_id = args.frame_id
        messages.append(msg)
        k = sequence.truth[index]['intrinsics']
        height, width = sequence.images.shape[1:3]
        intrinsics = CameraIntrinsics(k['fx'], k['fy'], k['cx'], k['cy'], width, height)
        infos.append(camera_info_msg(intrinsics, msg.header))
    count = args.count if args.count is not None else len(sequence)
    wait_until(
        lambda: (
            stop.event.is_set()
            or all(p.get_subscription_count() >= args.subscribers for p in publishers)
        ),
        args.wait_subscribers,
    )
    print(f'publishing {count} frames at {args.rate:g} Hz on {args.topic}', flush=True)
    period = 1.0 / args.rate
    stamps: list[list[int]] = []
    late = 0
    start = time.monotonic() + period
    for tick in range(count):
        if stop.event.is_set():
            break
        due = start + tick * period
        delay = due - time.monotonic()
        if delay > 0:
            stop.event.wait(delay)
        elif -delay > period:
            late += 1
        index = tick % len(sequence)
        now_ns = time.time_ns()
        msg = messages[index]
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)
        for publisher in publishers:
            publisher.publish(msg)
        for info_publisher in info_publishers:
            info = infos[index]
            info.header = msg.header
            info_publisher.publish(info)
        stamps.append([index, msg.header.stamp.sec, msg.header.stamp.nanosec])
    if args.qos == 'reliable':
        # a reliable reader gets the last frames too, however big, before the process ends
        from rclpy.duration import Duration

        for publisher in publishers:
            publisher.wait_for_all_acked(Duration(seconds=args.linger))
    report = {'published': len(stamps), 'late': late, 'stamps': stamps}
    report['cpu_s'] = time.process_time()
    Path(args.report).write_text(json.dumps(report))
    print(f'published {len(stamps)} frames ({late} late)', flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def _passthrough_main(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image

    rclpy.init(args=None, signal_handler_options=SignalHandlerOptions.NO)
    stop = _Stop()
    node = rclpy.create_node('live_passthrough')
    qos = _qos(args.qos, args.depth)
    stamps: dict[str, list[list[int]]] = {topic: [] for topic in args.topic}

    def handler(topic: str) -> Any:
        received = stamps[topic]

        def on_image(msg: Image) -> None:
            received.append([msg.header.stamp.sec, msg.header.stamp.nanosec])

        return on_image

    for topic in args.topic:
        node.create_subscription(Image, topic, handler(topic), qos)
    if args.executor == 'events':
        from rclpy.experimental.events_executor import EventsExecutor

        executor: Any = EventsExecutor()
    else:
        executor = SingleThreadedExecutor()
    executor.add_node(node)
    print(f'subscribed to {args.topic}', flush=True)
    while not stop.event.is_set():
        executor.spin_once(timeout_sec=0.1)
    report = {
        'topics': {t: {'received': len(s), 'stamps': s} for t, s in stamps.items()},
        'cpu_s': time.process_time(),
    }
    Path(args.report).write_text(json.dumps(report))
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest='command', required=True)
    camera = commands.add_parser('camera', help='publish rendered frames at a fixed rate')
    camera.add_argument('frames', help='.npz written by render_sequence')
    camera.add_argument('--topic', action='append', required=True)
    camera.add_argument('--camera-info-topic', action='append', default=[])
    camera.add_argument('--rate', type=float, required=True)
    camera.add_argument('--count', type=int)
    camera.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    camera.add_argument('--depth', type=int, default=1)
    camera.add_argument('--subscribers', type=int, default=1)
    camera.add_argument('--wait-subscribers', type=float, default=60.0)
    camera.add_argument('--frame-id', default='sim_camera_optical_frame')
    camera.add_argument('--linger', type=float, default=30.0, help='max s to wait for acks')
    camera.add_argument('--report', required=True)
    passthrough = commands.add_parser('passthrough', help='count frames received per topic')
    passthrough.add_argument('--topic', action='append', required=True)
    passthrough.add_argument('--qos', choices=('reliable', 'best_effort'), default='reliable')
    passthrough.add_argument('--depth', type=int, default=1)
    passthrough.add_argument('--executor', choices=('single', 'events'), default='single')
    passthrough.add_argument('--report', required=True)
    args = parser.parse_args(argv)
    if args.command == 'camera':
        return _camera_main(args)
    return _passthrough_main(args)


if __name__ == '__main__':
    sys.exit(main())

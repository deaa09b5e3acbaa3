"""Tracker cost per camera frame for 20 moving objects (target: at most 2 ms on this CPU).

The model answers on every 5th frame (ByteTrack update); the other frames are predictions. Both
are timed, and their mean over a camera frame is the figure that matters at camera rate.
Writes the 'tracking_cost' section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine_line, update_section
from grounding_agent.core.tracking import TrackerConfig, TrackSet
from grounding_agent.core.types import Box, Detection


def _scene(n_objects: int, n_frames: int, seed: int) -> list[list[Detection]]:
    rng = np.random.default_rng(seed)
    start = rng.uniform([50, 50], [590, 430], size=(n_objects, 2))
    velocity = rng.uniform(-3, 3, size=(n_objects, 2))
    phrases = [f'object {i % 4}' for i in range(n_objects)]
    frames = []
    for frame in range(n_frames):
        centres = start + velocity * frame
        frames.append(
            [
                Detection(
                    box=Box(cx - 15, cy - 15, cx + 15, cy + 15),
                    phrase=phrases[i],
                    score=0.9,
                    embedding=rng.random(24).astype(np.float32),
                )
                for i, (cx, cy) in enumerate(centres)
            ]
        )
    return frames


def run(n_objects: int = 20, n_frames: int = 600, model_every: int = 5) -> dict[str, float]:
    frames = _scene(n_objects, n_frames, seed=0)
    tracker = TrackSet(TrackerConfig())
    update_ms: list[float] = []
    predict_ms: list[float] = []
    for index, detections in enumerate(frames):
        t = index / 30.0
        start = time.perf_counter()
        if index % model_every == 0:
            tracker.update(detections, t)
            update_ms.append((time.perf_counter() - start) * 1e3)
        else:
            tracker.predict(t)
            predict_ms.append((time.perf_counter() - start) * 1e3)
    warm = 5
    upd = float(np.median(update_ms[warm:]))
    pred = float(np.median(predict_ms[warm:]))
    per_frame = (upd + (model_every - 1) * pred) / model_every
    return {'update_ms': upd, 'predict_ms': pred, 'per_frame_ms': per_frame}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--objects', type=int, default=20)
    parser.add_argument('--frames', type=int, default=600)
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args()
    numbers = run(args.objects, args.frames)
    table = (
        '## Tracker cost (`bench/bench_tracking_cost.py`)\n\n'
        f'{machine_line()}. {args.objects} objects in 4 phrases, moving linearly, '
        f'{args.frames} camera frames at 30 Hz, model answer on every 5th frame. Medians.\n\n'
        '| step | ms |\n|---|---|\n'
        f'| ByteTrack update with a model answer | {numbers["update_ms"]:.3f} |\n'
        f'| prediction on a camera frame between answers | {numbers["predict_ms"]:.3f} |\n'
        f'| **mean per camera frame** (target <= 2 ms) | **{numbers["per_frame_ms"]:.3f}** |\n'
    )
    print(table)
    if not args.no_write:
        update_section('tracking_cost', table)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Tracking quality on the simulator's moving sequences (crossing, occlusion, exit and re-entry,
mixed; three seeds each) with the model on every 5th frame, scored with trackers.eval.

Targets: IDF1 >= 0.90, at most 1 identity switch per 1,000 frames, a published box on at least
99% of the frames in which the tracked object is visible. Writes the 'tracking' section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine_line, update_section
from grounding_agent.backends import create_backend
from grounding_agent.eval.tracking import evaluate_tracking


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--backend', default='color_shape')
    parser.add_argument('--no-write', action='store_true')
    args = parser.parse_args()
    started = time.monotonic()
    report = evaluate_tracking(create_backend({'name': args.backend}), progress=False)
    elapsed = time.monotonic() - started
    total = report.total
    verdict = [
        f'- IDF1 {total.idf1:.3f} (target >= 0.90: {"met" if total.idf1 >= 0.9 else "NOT met"})',
        f'- identity switches {total.id_switches} in {total.frames} frames = '
        f'{total.id_switches_per_1000:.2f} per 1,000 (target <= 1: '
        f'{"met" if total.id_switches_per_1000 <= 1 else "NOT met"})',
        f'- published box on {total.coverage:.1%} of the frames with the tracked object visible '
        f'(target >= 99%: {"met" if total.coverage >= 0.99 else "NOT met"}); '
        f'{total.target_accuracy:.1%} of those frames have the box on the object (IoU >= 0.5)',
    ]
    settings = report.settings
    text = (
        '## Tracking on simulated sequences (`bench/bench_tracking.py`)\n\n'
        f'{machine_line()}. Backend `{settings["backend"]}`; camera {settings["camera_hz"]:g} Hz '
        f'at {settings["resolution"][0]}x{settings["resolution"][1]}, model on every '
        f'{settings["model_every"]}th frame, tracker (ByteTrack per phrase + re-identification) '
        'in between, exactly as in the node. MOT metrics over every object on the table '
        f'(visible >= {settings["min_visible"]:.0%}) with `trackers.eval`; the "target" columns '
        'follow a standing grounding ("track the <colour> <shape>") of the moving object. '
        f'{len(report.sequences)} sequences, {elapsed:.0f} s '
        '(`grounding-agent eval-tracking` prints the same table).\n\n'
        + report.markdown()
        + '\n'
        + '\n'.join(verdict)
        + '\n'
    )
    print(text)
    if not args.no_write:
        update_section('tracking', text)
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Tracking metrics through trackers.eval on hand-made frames whose right answers are known."""

from __future__ import annotations

import pytest

from grounding_agent.core.types import Box
from grounding_agent.eval.tracking import score_mot


def _box(x: float) -> Box:
    return Box(x, 0.0, x + 10.0, 10.0)


def test_perfect_tracking_scores_one() -> None:
    gt = [[(0, _box(10 * t)), (1, _box(100 + 10 * t))] for t in range(10)]
    tracks = [[(7, _box(10 * t)), (8, _box(100 + 10 * t))] for t in range(10)]
    metrics = score_mot(gt, tracks)
    assert metrics['clear']['MOTA'] == pytest.approx(1.0)
    assert metrics['clear']['IDSW'] == 0
    assert metrics['identity']['IDF1'] == pytest.approx(1.0)
    assert metrics['hota']['HOTA'] == pytest.approx(1.0)


def test_an_identity_swap_is_one_switch_per_object_and_lowers_idf1() -> None:
    gt = [[(0, _box(0)), (1, _box(100))] for _ in range(10)]
    tracks = [
        [(7, _box(0)), (8, _box(100))] if t < 5 else [(8, _box(0)), (7, _box(100))]
        for t in range(10)
    ]
    metrics = score_mot(gt, tracks)
    assert metrics['clear']['IDSW'] == 2
    assert metrics['clear']['MOTA'] == pytest.approx((20 - 2) / 20)
    assert metrics['identity']['IDF1'] == pytest.approx(0.5)


def test_missed_and_extra_boxes_count_against_mota() -> None:
    gt = [[(0, _box(0))] for _ in range(4)]
    tracks = [[(1, _box(0))], [], [(1, _box(0)), (2, _box(200))], [(1, _box(0))]]
    metrics = score_mot(gt, tracks)
    clear = metrics['clear']
    assert (clear['CLR_TP'], clear['CLR_FN'], clear['CLR_FP']) == (3, 1, 1)
    assert clear['MOTA'] == pytest.approx((3 - 1) / 4)


@pytest.mark.slow
def test_a_crossing_sequence_keeps_identities_and_the_target_boxed() -> None:
    from grounding_agent.backends import create_backend
    from grounding_agent.eval.tracking import evaluate_sequence
    from grounding_agent.sim.sequences import make_tracking_sequence

    spec = make_tracking_sequence('crossing', 0)
    score = evaluate_sequence('crossing-0', spec, create_backend({'name': 'color_shape'}))
    assert score.frames == round(spec.duration_s * 30)
    assert score.model_calls == -(-score.frames // 5)  # every 5th frame
    assert score.id_switches == 0
    assert score.idf1 > 0.9
    assert score.coverage == 1.0
    assert score.target_id_changes == 0


def test_eval_tracking_command_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    from grounding_agent.cli import main

    assert main(['eval-tracking', '--seeds', 'x']) == 2
    assert main(['eval-tracking', '--model-every', '0']) == 2
    assert 'error' in capsys.readouterr().err


def test_eval_tracking_live_runs_the_live_benchmark_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from grounding_agent.cli import main
    from grounding_agent.commands import eval_tracking

    calls: list[list[str]] = []
    # stands in for starting the benchmark's processes (minutes of DDS traffic)
    monkeypatch.setattr(eval_tracking.subprocess, 'call', lambda argv: calls.append(argv) or 0)
    assert main(['eval-tracking', '--live', '--kinds', 'crossing', '--rates', '30']) == 0
    (argv,) = calls
    assert argv[1].endswith('bench/bench_live_tracking.py')
    assert argv[argv.index('--kinds') + 1] == 'crossing'
    assert argv[argv.index('--rates') + 1] == '30'
    assert argv[argv.index('--width') + 1] == '640'
    assert '--seed' not in argv  # the live benchmark's own seed, apart from the offline ones
    assert '--no-write' in argv

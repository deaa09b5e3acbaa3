"""The demo: its scene files, script, scoring and report as plain Python, and one short run of
`grounding-agent demo` end to end over ROS 2 (sim_camera + grounding_node + operator)."""

from __future__ import annotations

import argparse
import importlib.util
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.result import GroundingResult, ResultStatus, TargetModel, TrackState
from grounding_agent.core.types import Box, Stamp
from grounding_agent.demo.report import (
    DemoReport,
    DemoRow,
    TrackSummary,
    format_table,
    write_markdown,
)
from grounding_agent.demo.scoring import TrueObject, TruthFrame, Verdict, score_result
from grounding_agent.demo.script import Expectation, load_script, script_from_mapping
from grounding_agent.sim.paths import CircularPath, LinearPath, WaypointPath
from grounding_agent.sim.scene import SceneSpec, SimObject, generate_scene, look_at_pose
from grounding_agent.sim.scene_file import load_scene_file, scene_from_mapping

ROOT = Path(__file__).resolve().parents[1]
DEMO_SCRIPT = ROOT / 'config' / 'demo.yaml'

# -- scene files --------------------------------------------------------------------------------


def test_a_scene_survives_its_own_dict_form() -> None:
    moving = (
        SimObject('lin', 'cube', 'red', 'small', (0.0, 0.0, 0.0175),
                  path=LinearPath((0.0, 0.0, 0.0175), (0.01, 0.0, 0.0), t_end=5.0)),
        SimObject('circ', 'sphere', 'blue', 'large', (0.1, 0.0, 0.035),
                  path=CircularPath((0.0, 0.0, 0.035), 0.1, 8.0, phase=0.5)),
        SimObject('way', 'cone', 'green', 'large', (0.0, 0.1, 0.0455),
                  path=WaypointPath(((0.0, 0.0, 0.1, 0.0455), (2.0, 0.1, 0.1, 0.0455)))),
    )  # fmt: skip
    for spec in (
        generate_scene(4),
        SceneSpec(seed=9, objects=moving, camera=look_at_pose(distance=0.7)),
    ):
        again = scene_from_mapping(spec.to_dict())
        assert again.objects == spec.objects
        assert again.camera == spec.camera
        assert again.light_direction == pytest.approx(spec.light_direction)


def test_two_number_positions_stand_on_the_table() -> None:
    spec = scene_from_mapping(
        {'objects': [{'shape': 'cube', 'colour': 'red', 'size': 'large', 'position': [0.1, 0.2]}]}
    )
    assert spec.objects[0].position == pytest.approx((0.1, 0.2, 0.035))
    assert spec.objects[0].name == 'o0_red_cube'


def _scene(**object_fields: Any) -> dict[str, Any]:
    entry = {'shape': 'cube', 'colour': 'red', 'size': 'large', 'position': [0.0, 0.0]}
    entry.update(object_fields)
    return {'objects': [{k: v for k, v in entry.items() if v is not None}]}


@pytest.mark.parametrize(
    ('document', 'message'),
    [
        ({'objects': []}, 'non-empty `objects`'),
        ({**_scene(), 'lights': 1}, 'unknown scene keys'),
        (_scene(shape=None), "needs 'shape'"),
        (_scene(colour='teal'), 'unknown colour'),
        (_scene(position=[0.0]), 'position must be a list of 2 or 3'),
        (_scene(position=[0.0, math.nan]), 'finite'),
        (_scene(path={'kind': 'spiral'}), 'kind must be linear, circular or waypoints'),
        (_scene(path={'kind': 'circular', 'centre': [0, 0]}), "needs 'radius'"),
        (
            _scene(path={'kind': 'waypoints', 'waypoints': [[1, 0, 0], [0, 1, 1]]}),
            'increase strictly',
        ),
        ({**_scene(), 'camera': {'eye': [0, 0, 1], 'target': [0, 0, 0]}}, 'up vector'),
    ],
)
def test_bad_scenes_say_what_is_wrong(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        scene_from_mapping(document)


def test_a_missing_scene_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match='cannot read scene file'):
        load_scene_file(tmp_path / 'absent.yaml')


# -- the script ---------------------------------------------------------------------------------


def test_the_shipped_script_loads_and_shortens() -> None:
    script = load_script(DEMO_SCRIPT)
    kinds = {command.expect.kind for command in script.commands}
    assert kinds == {'target', 'count', 'relation', 'absent'}
    assert script.track is not None
    assert script.scene.object(script.track.target).path is not None  # the target moves
    short = script.shortened(max_commands=2, track_duration_s=0.0)
    assert short.commands == script.commands[:2]
    assert short.track is None


@pytest.mark.parametrize(
    ('expect', 'message'),
    [
        ({'target': 'unicorn'}, 'not an object of the scene'),
        ({'colour': 'red'}, 'unknown expectation'),
        ({'count': {'weight': 'heavy'}}, 'must map some of'),
        (
            {'relation': {'subject': 'red_cube', 'relation': 'near', 'object': 'red_cube'}},
            'one of',
        ),
        ({'target': 'red_cube', 'count': {'shape': 'cube'}}, 'one of'),
    ],
)
def test_bad_expectations_say_what_is_wrong(expect: dict[str, Any], message: str) -> None:
    document = yaml.safe_load(DEMO_SCRIPT.read_text())
    document['commands'] = [{'text': 'find it', 'expect': expect}]
    with pytest.raises(ConfigError, match=message):
        script_from_mapping(document)


# -- scoring ------------------------------------------------------------------------------------

RED = TrueObject('red_cube', 'cube', 'red', 'large', Box(100, 100, 150, 150), (-0.1, 0.0, 0.8))
BLUE = TrueObject('blue_ball', 'sphere', 'blue', 'small', Box(300, 100, 320, 120), (0.1, 0.0, 0.6))
HIDDEN = TrueObject('green_cube', 'cube', 'green', 'small', None, (0.0, 0.0, 0.9))
TRUTH = TruthFrame(stamp=Stamp(5), objects=(RED, BLUE, HIDDEN), fx=500.0, cx=320.0)


def answer(
    status: ResultStatus,
    *,
    box: list[float] | None = None,
    value: Any = None,
    track_state: TrackState | None = None,
) -> Any:
    target = None if box is None else TargetModel(phrase='x', box=box, score=0.9)
    return GroundingResult(
        status=status, reason='r', target=target, answer=value, track_state=track_state
    )


GROUNDED, ANSWERED, REJECTED = ResultStatus.GROUNDED, ResultStatus.ANSWERED, ResultStatus.REJECTED
RED_CUBE = Expectation('target', 'red_cube')
HIDDEN_CUBE = Expectation('target', 'green_cube')
CUBES = Expectation('count', attributes=(('shape', 'cube'),))
SMALL = Expectation('count', attributes=(('size', 'small'),))
RED_LEFT_OF_BLUE = Expectation(
    'relation', subject='red_cube', relation='left_of', anchor='blue_ball'
)
BLUE_IN_FRONT = Expectation(
    'relation', subject='blue_ball', relation='in_front_of', anchor='red_cube'
)
NO_PINK = Expectation('absent', attributes=(('colour', 'pink'),))
NO_RED = Expectation('absent', attributes=(('colour', 'red'),))


@pytest.mark.parametrize(
    ('result', 'expect', 'correct'),
    [
        (answer(GROUNDED, box=[100, 100, 150, 150]), RED_CUBE, True),
        (answer(GROUNDED, box=[120, 120, 170, 170]), RED_CUBE, False),  # IoU 0.22
        (answer(REJECTED), RED_CUBE, False),
        (answer(REJECTED), HIDDEN_CUBE, True),  # hidden: nothing to see
        # hidden and the tracker says it coasts on the motion model: right
        (answer(GROUNDED, box=[1, 1, 9, 9], track_state=TrackState.OCCLUDED), HIDDEN_CUBE, True),
        # hidden but claimed as seen: wrong
        (answer(GROUNDED, box=[1, 1, 9, 9], track_state=TrackState.TRACKING), HIDDEN_CUBE, False),
        (answer(GROUNDED, box=[1, 1, 9, 9]), HIDDEN_CUBE, False),
        (answer(ANSWERED, value=1), CUBES, True),  # the hidden cube is not counted
        (answer(ANSWERED, value=2), CUBES, False),
        (answer(ANSWERED, value=True), SMALL, False),  # a bool is not a count
        (answer(ANSWERED, value=True), RED_LEFT_OF_BLUE, True),
        (answer(ANSWERED, value=False), RED_LEFT_OF_BLUE, False),
        (answer(ANSWERED, value=True), BLUE_IN_FRONT, True),
        (answer(REJECTED), NO_PINK, True),
        (answer(GROUNDED, box=[1, 1, 2, 2]), NO_PINK, False),
        # The script claims 'no red object' but the scene has one: never counted as correct.
        (answer(REJECTED), NO_RED, False),
    ],
)
def test_answers_are_scored_against_the_truth(
    result: GroundingResult, expect: Expectation, correct: bool
) -> None:
    assert score_result(result, expect, TRUTH, iou=0.5).correct is correct


def test_no_truth_for_the_frame_is_neither_right_nor_wrong() -> None:
    verdict = score_result(answer(REJECTED), Expectation('target', 'red_cube'), None, iou=0.5)
    assert verdict.correct is None
    assert verdict.mark == '?'


def test_report_lists_every_row_and_the_totals(tmp_path: Path) -> None:
    rows = [
        DemoRow('1', 'find the red cube', answer(GROUNDED, box=[100, 100, 150, 150]),
                Verdict(True, 'red_cube [100, 100, 150, 150]', iou=1.0), 120.0, 'images/a.png'),
        DemoRow('2', 'find the pink cone', None, Verdict(False, 'rejected (no pink cone)')),
    ]  # fmt: skip
    table = format_table(rows).splitlines()
    assert len(table) == 4
    assert table[2].split()[:3] == ['1', 'find', 'the']
    assert 'timeout' in table[3]
    report = DemoReport(backend='color_shape', script='demo.yaml', seed=1, iou=0.5, rows=rows)
    text = write_markdown(report, tmp_path).read_text()
    assert '**Commands: 1 of 2 correct** (1 answered in time)' in text
    assert '[a.png](images/a.png)' in text
    assert 'no answer in time' in text


def test_the_track_line_counts_the_track_ids_before_naming_them() -> None:
    def tracked(track_id: str | None) -> DemoRow:
        result = answer(GROUNDED, box=[10, 10, 20, 20], track_state=TrackState.TRACKING)
        target = result.target.model_copy(update={'track_id': track_id})
        result = result.model_copy(update={'target': target})
        return DemoRow('t', 'track the ball', result, Verdict(True, 'ball', iou=0.8))

    def line(*ids: str | None) -> str:
        rows = tuple(tracked(i) for i in ids)
        return TrackSummary('track the ball', 'ball', 8.0, rows).line()

    # one track whose id happens to be '2' must not read as two tracks
    assert line('2', '2').endswith('correct (IoU >= threshold) 2/2, mean IoU 0.80, 1 track id (2)')
    assert line('1', '3', '1').endswith('2 track ids (1, 3)')
    assert line(None).endswith('0 track ids')


def test_the_frames_line_scores_the_latest_box_of_each_frame() -> None:
    from grounding_agent.core.result import StampModel

    def row(sec: int, correct: bool, iou: float | None, boxed: bool = True) -> DemoRow:
        result = answer(GROUNDED, box=[10, 10, 20, 20], track_state=TrackState.TRACKING)
        result = result.model_copy(
            update={'stamp': StampModel(sec=sec), 'target': result.target if boxed else None}
        )
        return DemoRow('t', 'track the ball', result, Verdict(correct, 'ball', iou=iou))

    rows = (
        row(1, False, 0.1),  # frame 1: the prediction was off ...
        row(1, True, 0.9),  # ... and the model's box for it is on the object: counts
        row(2, True, 0.8),
        row(3, False, None),  # the ball hidden: not a visible frame
        row(4, False, 0.0, boxed=False),  # visible, no box
    )
    summary = TrackSummary('track the ball', 'ball', 8.0, rows)
    assert summary.frames_on_object == (3, 2, 2)
    assert summary.frames_line().endswith('the box on the object in 2 of them (100%)')


# -- end to end ---------------------------------------------------------------------------------

needs_ros = pytest.mark.skipif(
    importlib.util.find_spec('rclpy') is None or importlib.util.find_spec('pybullet') is None,
    reason='the demo needs rclpy and pybullet',
)


@needs_ros
@pytest.mark.ros
@pytest.mark.slow
def test_demo_answers_the_scripted_commands_as_the_scene_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from grounding_agent.commands import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    out = tmp_path / 'demo_output'
    args = parser.parse_args(['--out', str(out), '--track-seconds', '2.5'])
    assert demo.run(args) == 0

    script = load_script(DEMO_SCRIPT)
    printed = capsys.readouterr().out
    table_rows = [line for line in printed.splitlines() if re.match(r'\d+ {2,}', line)]
    assert len(table_rows) == len(script.commands)
    statuses = {line.split('  ')[0].strip(): line for line in table_rows}
    expected_status = {
        'target': 'grounded',
        'count': 'answered',
        'relation': 'answered',
        'absent': 'rejected',
    }
    for index, command in enumerate(script.commands, start=1):
        row = statuses[str(index)]
        assert command.text in row
        assert f'  {expected_status[command.expect.kind]}  ' in row, row
        # Every answer agrees with the ground truth of its frame: the count is the true count,
        # the absent object is rejected, located boxes overlap the intended object.
        assert row.rstrip().endswith('yes'), row
    assert 'track "track the purple ball"' in printed

    report = (out / 'report.md').read_text()
    for command in script.commands:
        assert command.text in report
    images = sorted((out / 'images').glob('*.png'))
    assert len([p for p in images if p.name[:2].isdigit()]) == len(script.commands)
    assert any(p.name.startswith('track_') for p in images)
    assert (out / 'images' / 'scene.png') in images
    for image in images:
        assert image.stat().st_size > 1000

"""The agent facade against the Backend protocol (ScriptedBackend test double): I/O and errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scripted_backend import ScriptedBackend

from grounding_agent.commands import ground as ground_command
from grounding_agent.core.agent import NO_IMAGE_REASON, GroundingAgent, query_phrases
from grounding_agent.core.config import ResolverConfig
from grounding_agent.core.result import GroundingResult, ResultStatus
from grounding_agent.core.types import (
    Box,
    CameraIntrinsics,
    Detection,
    Frame,
    ObjectRef,
    Query,
    QueryKind,
    Relation,
    RelationConstraint,
    Stamp,
)

IMAGE = np.zeros((480, 640, 3), dtype=np.uint8)
FRAME = Frame(image=IMAGE, stamp=Stamp(42, 7), frame_id='cam_optical', camera='front')
CAMERA = CameraIntrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480)

MUG = Detection(Box(100, 200, 160, 260), 'mug', 0.9, label='red mug')
LAPTOP = Detection(Box(300, 150, 500, 300), 'laptop', 0.88)
SCRIPT = {'red mug': [MUG], 'laptop': [LAPTOP], 'object': [MUG, LAPTOP]}

MUG_LEFT_OF_LAPTOP = Query(
    kind=QueryKind.LOCATE,
    text='find the red mug left of the laptop',
    target=ObjectRef(
        phrase='red mug',
        noun='mug',
        colour='red',
        relations=(RelationConstraint(Relation.LEFT_OF, (ObjectRef('laptop', 'laptop'),)),),
    ),
)


def checked(result: GroundingResult) -> GroundingResult:
    """Every result must be a valid message that survives JSON."""
    assert GroundingResult.from_json(result.to_json()) == result
    return result


def test_one_detect_call_for_every_phrase_and_a_full_result() -> None:
    backend = ScriptedBackend(SCRIPT)
    agent = GroundingAgent(backend)
    result = checked(agent.resolve_query(MUG_LEFT_OF_LAPTOP, FRAME, request_id='r1'))
    assert backend.detect_calls == [['red mug', 'laptop']]
    assert result.status is ResultStatus.GROUNDED
    assert (result.request_id, result.backend, result.kind) == ('r1', 'scripted', 'locate')
    assert result.command == MUG_LEFT_OF_LAPTOP.text
    assert result.stamp is not None
    assert (result.stamp.sec, result.stamp.nanosec, result.frame_id) == (42, 7, 'cam_optical')
    assert result.camera == 'front'
    assert set(result.latency_ms) == {'model', 'total'}
    assert 0.0 <= result.latency_ms['model'] <= result.latency_ms['total']


def test_what_also_asks_for_the_generic_phrase() -> None:
    query = Query(
        kind=QueryKind.WHAT,
        text='what is left of the laptop?',
        target=ObjectRef(
            phrase='',
            relations=(RelationConstraint(Relation.LEFT_OF, (ObjectRef('laptop', 'laptop'),)),),
        ),
        action='ask',
    )
    assert query_phrases(query) == ['laptop', 'object']
    backend = ScriptedBackend(SCRIPT)
    result = checked(GroundingAgent(backend).resolve_query(query, FRAME))
    assert backend.detect_calls == [['laptop', 'object']]
    assert (result.status, result.answer) == (ResultStatus.ANSWERED, 'red mug')


def test_depth_gives_the_target_a_point() -> None:
    depth = np.full((480, 640), 0.9, dtype=np.float32)
    frame = Frame(image=IMAGE, depth=depth, intrinsics=CAMERA)
    result = checked(
        GroundingAgent(ScriptedBackend(SCRIPT)).resolve_query(MUG_LEFT_OF_LAPTOP, frame)
    )
    assert result.target is not None
    assert result.target.point is not None
    assert result.target.point[2] == pytest.approx(0.9)


BROKEN_CAMERA = CameraIntrinsics(fx=0.0, fy=0.0, cx=320.0, cy=240.0, width=640, height=480)
DEPTH = np.full((480, 640), 0.9, dtype=np.float32)


@pytest.mark.parametrize(
    ('depth', 'intrinsics'),
    [
        (np.full((480, 640), np.nan, dtype=np.float32), CAMERA),  # no valid depth at all
        (np.full((480, 640, 3), 0.9, dtype=np.float32), CAMERA),  # not a depth image
        (np.zeros((0, 0), dtype=np.float32), CAMERA),  # empty
        (DEPTH, BROKEN_CAMERA),  # a camera model that cannot place points
    ],
)
def test_unusable_depth_falls_back_to_2d(depth: np.ndarray, intrinsics: CameraIntrinsics) -> None:
    frame = Frame(image=IMAGE, depth=depth, intrinsics=intrinsics)
    result = checked(
        GroundingAgent(ScriptedBackend(SCRIPT)).resolve_query(MUG_LEFT_OF_LAPTOP, frame)
    )
    assert result.status is ResultStatus.GROUNDED
    assert result.target is not None
    assert result.target.point is None


@pytest.mark.parametrize(
    ('probability', 'status', 'calls'),
    [
        (0.9, ResultStatus.GROUNDED, 1),
        (0.1, ResultStatus.REJECTED, 1),
        (None, ResultStatus.GROUNDED, 1),
    ],
)
def test_backend_verification_is_used(
    probability: float | None, status: ResultStatus, calls: int
) -> None:
    backend = ScriptedBackend(SCRIPT, verify_fn=lambda box, description: probability)
    result = checked(GroundingAgent(backend).resolve_query(MUG_LEFT_OF_LAPTOP, FRAME))
    assert result.status is status
    assert len(backend.verify_calls) == calls
    assert backend.verify_calls[0][1] == 'red mug left of the laptop'


def test_a_backend_reading_whole_expressions_verifies_the_operators_sentence() -> None:
    """Issue 11, item 4: a VLM gets the sentence as said, not the shortened phrase."""
    backend = ScriptedBackend(SCRIPT, verify_fn=lambda box, description: 0.9)
    backend.supports_expression = True
    checked(GroundingAgent(backend).resolve_query(MUG_LEFT_OF_LAPTOP, FRAME))
    assert [d for _box, d in backend.verify_calls] == ['find the red mug left of the laptop']


def test_verification_switched_off_is_not_called() -> None:
    backend = ScriptedBackend(SCRIPT, verify_fn=lambda box, description: 0.0)
    agent = GroundingAgent(backend, ResolverConfig(verify=False))
    assert checked(agent.resolve_query(MUG_LEFT_OF_LAPTOP, FRAME)).status is ResultStatus.GROUNDED
    assert backend.verify_calls == []


def test_detection_threshold_is_applied() -> None:
    weak = {'red mug': [MUG.with_updates(score=0.05)], 'laptop': [LAPTOP]}
    result = checked(
        GroundingAgent(ScriptedBackend(weak)).resolve_query(MUG_LEFT_OF_LAPTOP, FRAME)
    )
    assert (result.status, result.reason) == (ResultStatus.REJECTED, 'no red mug found')


def test_boxes_are_clipped_to_the_image_and_outside_ones_dropped() -> None:
    script = {
        'red mug': [
            Detection(Box(-50, 200, 160, 260), 'red mug', 0.9),
            Detection(Box(700, 500, 800, 600), 'red mug', 0.99),
        ],
        'laptop': [LAPTOP],
    }
    result = checked(
        GroundingAgent(ScriptedBackend(script)).resolve_query(MUG_LEFT_OF_LAPTOP, FRAME)
    )
    assert result.target is not None
    assert result.target.box == [0.0, 200.0, 160.0, 260.0]


class GarbageBackend(ScriptedBackend):
    """A broken backend: returns something that is not a list of detections."""

    def detect(self, image: np.ndarray, phrases: object) -> list[Detection]:  # type: ignore[override]
        return [('not', 'a', 'detection')]  # type: ignore[list-item]


@pytest.mark.parametrize(
    ('backend', 'frame', 'reason'),
    [
        (
            ScriptedBackend(SCRIPT, failure=RuntimeError('CUDA out of memory')),
            FRAME,
            'RuntimeError: CUDA out of memory',
        ),
        (GarbageBackend(SCRIPT), FRAME, 'BackendError: detect() returned a tuple'),
        (
            ScriptedBackend(SCRIPT),
            Frame(image=np.zeros((4, 4), dtype=np.uint8)),
            'ImageConversionError: the frame image must be HxWx3 RGB',
        ),
        (
            ScriptedBackend(SCRIPT),
            Frame(image=np.zeros((4, 4, 3), dtype=np.float32)),  # type: ignore[arg-type]
            'ImageConversionError: the frame image must be a uint8',
        ),
        (ScriptedBackend(SCRIPT), None, NO_IMAGE_REASON),
    ],
)
def test_failures_become_error_results(
    backend: ScriptedBackend, frame: Frame | None, reason: str
) -> None:
    agent = GroundingAgent(backend)
    result = checked(agent.resolve_query(MUG_LEFT_OF_LAPTOP, frame, request_id='7'))  # type: ignore[arg-type]
    assert result.status is ResultStatus.ERROR
    assert reason in result.reason
    assert (result.request_id, result.kind, result.backend) == ('7', 'locate', 'scripted')


def test_malformed_query_is_an_error_not_an_exception() -> None:
    nameless = Query(QueryKind.LOCATE, 'find', ObjectRef(phrase=''))
    result = checked(GroundingAgent(ScriptedBackend(SCRIPT)).resolve_query(nameless, FRAME))
    assert result.status is ResultStatus.ERROR
    assert result.reason.startswith('CommandError')


# -- handle_command: the whole path from text --------------------------------------------------


def test_handle_command_grounds_a_typed_command() -> None:
    backend = ScriptedBackend({'red mug': [MUG], 'laptop': [LAPTOP], 'mug': [MUG]})
    agent = GroundingAgent(backend)
    result = checked(
        agent.handle_command(
            'find the red mug left of the laptop', FRAME, request_id='9', camera='wrist'
        )
    )
    assert result.status is ResultStatus.GROUNDED, result.reason
    assert result.target is not None
    assert result.target.box == MUG.box.to_list()
    assert (result.request_id, result.camera, result.backend) == ('9', 'wrist', 'scripted')
    assert result.command == 'find the red mug left of the laptop'
    assert len(backend.detect_calls) == 1


def test_handle_command_without_a_frame_says_so() -> None:
    result = checked(GroundingAgent(ScriptedBackend(SCRIPT)).handle_command('find the cup', None))
    assert (result.status, result.reason) == (ResultStatus.ERROR, NO_IMAGE_REASON)


@pytest.mark.parametrize(
    'command',
    ['', '   ', b'\xff\xfe\xfa', 'x' * 100_000, '\x00\x01find', 'how many', '?!', b'find the cup'],
)
def test_handle_command_never_raises(command: str | bytes) -> None:
    result = checked(GroundingAgent(ScriptedBackend(SCRIPT)).handle_command(command, FRAME))
    assert result.reason
    assert len(result.command) <= ResolverConfig().max_command_chars + 3


def test_handle_command_reports_parse_errors_by_class() -> None:
    result = checked(GroundingAgent(ScriptedBackend(SCRIPT)).handle_command('', FRAME))
    assert result.status is ResultStatus.ERROR
    assert result.reason.startswith('CommandError')


def test_backend_name_comes_from_the_backend() -> None:
    assert GroundingAgent(ScriptedBackend({})).backend_name == 'scripted'


# -- grounding-agent ground ----------------------------------------------------------------------


@pytest.fixture
def two_cubes_png(tmp_path: Path) -> Path:
    """A drawn table top: a red square (left) and a blue square (right) on light gray."""
    image = np.full((240, 320, 3), 200, dtype=np.uint8)
    image[120:171, 40:91] = (220, 30, 30)
    image[120:171, 215:266] = (30, 60, 220)
    path = tmp_path / 'two_cubes.png'
    Image.fromarray(image).save(path)
    return path


def ground(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, GroundingResult]:
    parser = argparse.ArgumentParser()
    ground_command.add_arguments(parser)
    status = ground_command.run(parser.parse_args(list(argv)))
    return status, GroundingResult.from_json(capsys.readouterr().out)


def test_ground_command_grounds_with_the_default_backend(
    capsys: pytest.CaptureFixture[str], two_cubes_png: Path
) -> None:
    status, result = ground(
        capsys, '--image', str(two_cubes_png), '--query', 'find the red cube', '--request-id', 'x'
    )
    assert status == 0
    assert (result.status, result.backend, result.request_id) == (
        ResultStatus.GROUNDED, 'color_shape', 'x'
    )  # fmt: skip
    assert result.target is not None
    assert result.target.box[0] == pytest.approx(40.0, abs=3.0)


def test_ground_command_rejects_a_colour_that_is_not_there(
    capsys: pytest.CaptureFixture[str], two_cubes_png: Path
) -> None:
    status, result = ground(
        capsys, '--image', str(two_cubes_png), '--query', 'find the green cube'
    )
    assert status == 0
    assert result.status is ResultStatus.REJECTED
    assert result.reason.startswith('no green cube; closest:')


def test_ground_command_reads_the_node_parameter_file(
    capsys: pytest.CaptureFixture[str], two_cubes_png: Path, tmp_path: Path
) -> None:
    params = tmp_path / 'params.yaml'
    params.write_text(
        'grounding_node:\n  ros__parameters:\n    backend:\n      name: color_shape\n'
        '    resolver:\n      accept_threshold: 0.99\n',
        encoding='utf-8',
    )
    argv = ('--image', str(two_cubes_png), '--query', 'find the red cube', '--config', str(params))
    status, result = ground(capsys, *argv)
    assert status == 0
    assert result.status is ResultStatus.REJECTED
    assert 'below the acceptance threshold 0.99' in result.reason


@pytest.mark.parametrize(
    ('extra', 'config_text', 'reason'),
    [
        (('--image', 'missing.png'), None, 'ImageConversionError: cannot read image'),
        (('--backend', 'no_such_model'), None, 'ConfigError: unknown backend'),
        ((), 'resolver:\n  accept_threshold: 2.0\n', 'ConfigError: invalid resolver'),
        ((), 'backend: [1, 2]\n', 'ConfigError: `backend`'),
        ((), ': : :\n', 'ConfigError: cannot read config file'),
    ],
)
def test_ground_command_bad_input_prints_an_error_and_exits_2(
    capsys: pytest.CaptureFixture[str],
    two_cubes_png: Path,
    tmp_path: Path,
    extra: tuple[str, ...],
    config_text: str | None,
    reason: str,
) -> None:
    argv = ['--image', str(two_cubes_png), '--query', 'find the red cube']
    if config_text is not None:
        config = tmp_path / 'config.yaml'
        config.write_text(config_text, encoding='utf-8')
        argv += ['--config', str(config)]
    if extra[:1] == ('--image',):
        argv[1] = str(tmp_path / extra[1])
    else:
        argv += list(extra)
    status, result = ground(capsys, *argv)
    assert status == 2
    assert result.status is ResultStatus.ERROR
    assert result.reason.startswith(reason)
    assert result.command == 'find the red cube'


# -- the whole path with the weight-free backend ------------------------------------------------

RED_X, GREEN_X, BLUE_X = 40.0, 160.0, 300.0


@pytest.fixture(scope='module')
def cube_row_agent() -> tuple[GroundingAgent, Frame]:
    """color_shape on a drawn row: red cube, larger green cube, small blue cube."""
    from grounding_agent.backends import BackendConfig, create_backend

    image = np.full((240, 400, 3), 200, dtype=np.uint8)
    image[120:171, 40:91] = (220, 30, 30)
    image[110:171, 160:221] = (30, 160, 40)
    image[130:171, 300:341] = (30, 60, 220)
    agent = GroundingAgent(create_backend(BackendConfig(name='color_shape')))
    return agent, Frame(image=image)


@pytest.mark.parametrize(
    ('command', 'status', 'answer', 'target_x'),
    [
        ('how many cubes are there?', ResultStatus.ANSWERED, 3, None),
        ('is there a yellow cube?', ResultStatus.ANSWERED, False, None),
        ('is the red cube left of the blue cube?', ResultStatus.ANSWERED, True, RED_X),
        ('is the blue cube left of the red cube?', ResultStatus.ANSWERED, False, BLUE_X),
        ('what is left of the blue cube?', ResultStatus.ANSWERED, 'red cube, green cube', None),
        ('which cube is the largest?', ResultStatus.ANSWERED, 'the largest cube', GREEN_X),
        ('find the second cube from the left', ResultStatus.GROUNDED, None, GREEN_X),
        ('find the cube between the red cube and the blue cube', ResultStatus.GROUNDED, None,
         GREEN_X),
        ('find the small cube', ResultStatus.GROUNDED, None, BLUE_X),
        ('find the cube closest to the blue cube', ResultStatus.GROUNDED, None, GREEN_X),
        ('find the red cube right of the blue cube', ResultStatus.REJECTED, None, None),
        # color_shape cannot recognise a laptop at all: not 'rejected' (absent) but an error
        # naming what it cannot recognise.
        ('find the cube left of the laptop', ResultStatus.ERROR, None, None),
        ('find the cube', ResultStatus.AMBIGUOUS, None, None),
    ],
)  # fmt: skip
def test_commands_end_to_end_with_color_shape(
    cube_row_agent: tuple[GroundingAgent, Frame],
    command: str,
    status: ResultStatus,
    answer: object,
    target_x: float | None,
) -> None:
    agent, frame = cube_row_agent
    result = checked(agent.handle_command(command, frame))
    assert (result.status, result.answer) == (status, answer), result.reason
    assert (result.target.box[0] if result.target else None) == target_x


def test_resolve_query_with_detections_returns_what_the_answer_was_made_from() -> None:
    agent = GroundingAgent(ScriptedBackend(SCRIPT))
    result, detections = agent.resolve_query_with_detections(MUG_LEFT_OF_LAPTOP, FRAME)
    assert result == checked(agent.resolve_query(MUG_LEFT_OF_LAPTOP, FRAME)).model_copy(
        update={'latency_ms': result.latency_ms}
    )
    assert sorted(d.phrase for d in detections) == ['laptop', 'red mug']


def test_resolve_query_with_detections_on_a_failing_backend_gives_no_detections() -> None:
    class FailingBackend(ScriptedBackend):
        def detect(self, image, phrases):  # type: ignore[no-untyped-def]
            raise RuntimeError('model crashed')

    result, detections = GroundingAgent(FailingBackend(SCRIPT)).resolve_query_with_detections(
        MUG_LEFT_OF_LAPTOP, FRAME
    )
    assert result.status is ResultStatus.ERROR
    assert detections == []


def test_a_noun_a_closed_vocabulary_backend_cannot_recognise_is_not_rejected(
    cube_row_agent: tuple[GroundingAgent, Frame],
) -> None:
    """color_shape note of issue 11: 'find the laptop' must not read as 'no laptop here'."""
    agent, frame = cube_row_agent
    result = checked(agent.handle_command('find the laptop', frame))
    assert result.status is ResultStatus.ERROR
    assert result.unrecognised == ['laptop']
    # A part it cannot recognise only goes unchecked: the cube is still found.
    found = checked(agent.handle_command('find the red cube without a lid', frame))
    assert (found.status, found.unrecognised) == (ResultStatus.GROUNDED, [])

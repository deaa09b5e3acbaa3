"""The planner message: JSON round trips, the shipped JSON Schema, and what it refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from grounding_agent.core.result import (
    SCHEMA_ID,
    GroundingResult,
    RelationEvidence,
    ResultStatus,
    StampModel,
    TargetModel,
    TrackState,
    error_result,
    result_json_schema,
    result_json_schema_text,
    shipped_schema_path,
)
from grounding_agent.core.types import Box, Detection

MUG = TargetModel(phrase='red mug', box=[120.0, 200.5, 180.0, 260.0], score=0.86, track_id='7',
                  point=[0.12, -0.05, 0.74])  # fmt: skip
LAPTOP_EVIDENCE = RelationEvidence(
    relation='left_of', subject='red mug', object='laptop', score=0.93,
    object_box=[300.0, 180.0, 520.0, 330.0],
)  # fmt: skip
STAMP = StampModel(sec=1_700_000_000, nanosec=5)

SAMPLES = {
    'grounded': GroundingResult(
        request_id='42', command='find the red mug left of the laptop', kind='locate',
        status=ResultStatus.GROUNDED, reason='red mug (0.86) is left of the laptop',
        stamp=STAMP, frame_id='camera_color_optical_frame', camera='front', target=MUG,
        relations=[LAPTOP_EVIDENCE], latency_ms={'model': 212.0, 'total': 215.3},
        backend='owlv2', track_state=TrackState.TRACKING,
    ),
    'answered count': GroundingResult(
        kind='count', status=ResultStatus.ANSWERED, reason='counted 2 cups', answer=2,
        candidates=[MUG, MUG.model_copy(update={'box': [0.0, 0.0, 10.0, 10.0]})],
    ),
    'answered yes': GroundingResult(
        kind='exists', status=ResultStatus.ANSWERED, reason='yes: red mug', answer=True,
    ),
    'answered what': GroundingResult(
        kind='what', status=ResultStatus.ANSWERED, reason='1 object', answer='red mug',
    ),
    'rejected': GroundingResult(
        status=ResultStatus.REJECTED, reason='no blue bottle; closest: green bottle 0.41',
    ),
    'ambiguous': GroundingResult(
        status=ResultStatus.AMBIGUOUS, reason='2 red mugs match almost equally',
        candidates=[MUG, MUG],
    ),
    'error': error_result('CommandError: empty command', request_id='3'),
}  # fmt: skip


@pytest.mark.parametrize('result', SAMPLES.values(), ids=SAMPLES.keys())
def test_json_round_trip(result: GroundingResult) -> None:
    text = result.to_json()
    assert GroundingResult.from_json(text) == result
    assert GroundingResult.from_json(text.encode()) == result
    assert json.loads(text)['schema'] == SCHEMA_ID


@pytest.mark.parametrize('result', SAMPLES.values(), ids=SAMPLES.keys())
def test_answer_keeps_its_json_type(result: GroundingResult) -> None:
    # bool must not come back as int (or int as bool): the planner branches on the type.
    again = GroundingResult.from_json(result.to_json())
    assert type(again.answer) is type(result.answer)


def test_shipped_schema_file_is_up_to_date() -> None:
    # Regenerate with: grounding-agent schema > grounding_agent/schema/result.schema.json
    assert shipped_schema_path().read_text(encoding='utf-8') == result_json_schema_text()


def _check_against(schema: dict[str, Any], definitions: dict[str, Any], value: Any) -> None:
    """A structural check of `value` against the shipped schema: keys, required, enums.

    Not a full JSON Schema validator (none is installed); it covers what the planner relies on:
    no property the schema does not know, every required one present, enum values allowed.
    """
    if '$ref' in schema:
        _check_against(definitions[schema['$ref'].split('/')[-1]], definitions, value)
        return
    if 'anyOf' in schema:
        errors = []
        for option in schema['anyOf']:
            try:
                _check_against(option, definitions, value)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f'{value!r} matches no option: {errors}')
    kind = schema.get('type')
    if kind == 'null':
        assert value is None
    elif kind == 'object':
        assert isinstance(value, dict)
        properties = schema.get('properties', {})
        if schema.get('additionalProperties') is False:
            assert set(value) <= set(properties), set(value) - set(properties)
        assert set(schema.get('required', [])) <= set(value)
        for key, item in value.items():
            if key in properties:
                _check_against(properties[key], definitions, item)
    elif kind == 'array':
        assert isinstance(value, list)
        assert schema.get('minItems', 0) <= len(value) <= schema.get('maxItems', len(value))
        for item in value:
            _check_against(schema.get('items', {}), definitions, item)
    elif kind == 'string':
        assert isinstance(value, str)
    elif kind == 'number':
        assert isinstance(value, (int, float))
        assert not isinstance(value, bool)
    elif kind == 'integer':
        assert isinstance(value, int)
        assert not isinstance(value, bool)
    elif kind == 'boolean':
        assert isinstance(value, bool)
    if 'enum' in schema:
        assert value in schema['enum']
    if 'const' in schema:
        assert value == schema['const']


@pytest.mark.parametrize('result', SAMPLES.values(), ids=SAMPLES.keys())
def test_messages_match_the_shipped_schema(result: GroundingResult) -> None:
    schema = json.loads(shipped_schema_path().read_text(encoding='utf-8'))
    _check_against(schema, schema.get('$defs', {}), json.loads(result.to_json()))


def test_schema_check_catches_an_unknown_field() -> None:
    schema = result_json_schema()
    message = json.loads(SAMPLES['rejected'].to_json())
    message['boxes'] = []
    with pytest.raises(AssertionError):
        _check_against(schema, schema['$defs'], message)


@pytest.mark.parametrize(
    ('change', 'field'),
    [
        ({'status': 'found'}, 'status'),
        ({'reason': ''}, 'reason'),
        ({'schema': 'grounding_agent/result/1'}, 'schema'),
        ({'target': {'phrase': 'mug', 'box': [1, 2, 3], 'score': 0.5}}, 'box'),
        ({'target': {'phrase': 'mug', 'box': [1, 2, 3, 4], 'score': 1.5}}, 'score'),
        ({'stamp': {'sec': 1, 'nanosec': 1_000_000_000}}, 'nanosec'),
        ({'boxes': []}, 'boxes'),
    ],
)
def test_invalid_messages_are_refused(change: dict[str, Any], field: str) -> None:
    message = json.loads(SAMPLES['rejected'].to_json())
    message.update(change)
    with pytest.raises(ValidationError, match=field):
        GroundingResult.from_json(json.dumps(message))


def test_error_result_always_has_a_reason() -> None:
    assert error_result('').reason == 'unknown error'
    assert error_result('').status is ResultStatus.ERROR


def test_results_are_immutable() -> None:
    with pytest.raises(ValidationError):
        SAMPLES['rejected'].reason = 'changed'  # type: ignore[misc]


def test_target_from_detection_clamps_the_score() -> None:
    detection = Detection(Box(1, 2, 3, 4), 'cup', 1.7, point=(0.1, 0.2, 0.9), track_id='3')
    target = TargetModel.from_detection(detection)
    assert (target.score, target.point, target.track_id) == (1.0, [0.1, 0.2, 0.9], '3')
    assert target.to_box() == detection.box

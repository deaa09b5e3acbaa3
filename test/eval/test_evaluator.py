"""The GroundingME-protocol scorer against hand-computed numbers, the runner and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.types import Box
from grounding_agent.eval.evaluator import (
    ExpressionPredictor,
    Prediction,
    evaluate,
    load_predictions,
    run_evaluation,
    score_predictions,
)
from grounding_agent.eval.formats import GroundingSample, read_groundingme
from grounding_agent.eval.report import metrics_markdown, write_report

# (id, L-1, L-2, ground truth, answer status, answer box); hand-scored in the comments.
TABLE = [
    ('d1', 'Discriminative', 'colour', [0, 0, 10, 10], 'grounded', [0, 0, 10, 5]),  # IoU 0.5
    ('d2', 'Discriminative', 'colour', [0, 0, 10, 10], 'grounded', [0, 0, 10, 10]),  # IoU 1
    ('d3', 'Discriminative', 'size', [10, 10, 20, 20], 'grounded', [0, 0, 10, 10]),  # IoU 0
    ('s1', 'Spatial', 'relation', [0, 0, 10, 10], 'rejected', None),  # wrongly rejected
    ('s2', 'Spatial', 'relation', [0, 0, 10, 10], 'grounded', [0, 0, 10, 4.9]),  # IoU 0.49
    ('l1', 'Limited', 'small', [0, 0, 4, 4], 'ambiguous', None),  # no box
    ('r1', 'Rejection', 'absent', None, 'rejected', None),  # correct
    ('r2', 'Rejection', 'absent', None, 'ambiguous', None),  # wrong: not `rejected`
    ('r3', 'Rejection', 'attribute', None, 'grounded', [0, 0, 5, 5]),  # wrong
    ('r4', 'Rejection', 'attribute', None, 'error', None),  # wrong
    ('r5', 'Rejection', 'absent', None, None, None),  # no prediction at all: wrong
]


def _write_fixture(directory: Path) -> tuple[Path, Path]:
    """annotations.jsonl in GroundingME's record format and a predictions JSONL file."""
    annotations = directory / 'annotations.jsonl'
    predictions = directory / 'predictions.jsonl'
    with annotations.open('w') as ann, predictions.open('w') as pred:
        for sample_id, l1, l2, truth, status, box in TABLE:
            record = {
                'id': sample_id, 'description': f'thing {sample_id}', 'image': f'{sample_id}.png',
                'bbox': truth, 'subtask_l1': l1, 'subtask_l2': l2, 'width': 32, 'height': 32,
            }  # fmt: skip
            ann.write(json.dumps(record) + '\n')
            if status is not None:
                pred.write(
                    json.dumps({'id': sample_id, 'status': status, 'pred_bbox': box}) + '\n'
                )
    return annotations, predictions


@pytest.fixture
def scored(tmp_path: Path):
    annotations, predictions = _write_fixture(tmp_path)
    return score_predictions(read_groundingme(annotations), load_predictions(predictions))


def test_overall_accuracy_matches_hand_count(scored) -> None:
    assert scored.n_samples == 11
    assert scored.n_positive == 6
    assert scored.n_rejection == 5
    assert scored.acc_50 == pytest.approx(3 / 11)  # d1 (IoU exactly 0.5), d2, r1
    assert scored.acc_75 == pytest.approx(2 / 11)  # d2, r1
    assert scored.mean_iou == pytest.approx((0.5 + 1.0 + 0.0 + 0.0 + 0.49 + 0.0) / 6)
    assert scored.wrongly_rejected == pytest.approx(1 / 6)  # s1


@pytest.mark.parametrize(
    ('category', 'n', 'acc_50', 'acc_75', 'mean_iou'),
    [
        ('Discriminative', 3, 2 / 3, 1 / 3, 0.5),
        ('Spatial', 2, 0.0, 0.0, 0.245),
        ('Limited', 1, 0.0, 0.0, 0.0),
        ('Rejection', 5, 1 / 5, 1 / 5, None),
    ],
)
def test_l1_category_accuracy(scored, category, n, acc_50, acc_75, mean_iou) -> None:
    result = scored.by_l1[category]
    assert result.n == n
    assert result.acc_50 == pytest.approx(acc_50)
    assert result.acc_75 == pytest.approx(acc_75)
    assert result.mean_iou == (None if mean_iou is None else pytest.approx(mean_iou))


@pytest.mark.parametrize(
    ('category', 'n', 'acc_50'),
    [
        ('Discriminative/colour', 2, 1.0),
        ('Discriminative/size', 1, 0.0),
        ('Rejection/absent', 3, 1 / 3),
        ('Rejection/attribute', 2, 0.0),
    ],
)
def test_l2_category_accuracy(scored, category, n, acc_50) -> None:
    assert scored.by_l2[category].n == n
    assert scored.by_l2[category].acc_50 == pytest.approx(acc_50)


def test_status_counts_include_missing_prediction_as_error(scored) -> None:
    assert scored.status_counts == {'ambiguous': 2, 'error': 2, 'grounded': 5, 'rejected': 2}


@pytest.mark.parametrize(
    ('sample_id', 'correct'),
    [('d1', True), ('s2', False), ('r1', True), ('r2', False), ('r3', False), ('r4', False)],
)
def test_per_sample_verdicts(scored, sample_id, correct) -> None:
    by_id = {s.sample_id: s for s in scored.samples}
    assert by_id[sample_id].correct_50 is correct


def test_ambiguous_answer_with_box_is_not_a_prediction() -> None:
    """Only grounded / answered results predict a box, even when a box is stored."""
    samples = [
        GroundingSample('a', 'x', 'Spatial', bbox=Box(0, 0, 10, 10)),
        GroundingSample('b', 'x', 'Spatial', bbox=Box(0, 0, 10, 10)),
    ]
    predictions = [
        Prediction('a', 'ambiguous', Box(0, 0, 10, 10)),
        Prediction('b', 'answered', Box(0, 0, 10, 10)),
    ]
    by_id = {s.sample_id: s for s in score_predictions(samples, predictions).samples}
    assert not by_id['a'].correct_50
    assert by_id['b'].correct_50


def test_load_predictions_reads_groundingme_null_answer(tmp_path: Path) -> None:
    path = tmp_path / 'results.json'
    path.write_text(json.dumps({'detailed_results': [
        {'id': 'a', 'pred_bbox': [0, 0, 0, 0]},
        {'id': 'b', 'pred_bbox': [1, 2, 3, 4]},
        {'id': 'c', 'status': 'ambiguous', 'pred_bbox': [1, 2, 3, 4]},
    ]}))  # fmt: skip
    predictions = {p.sample_id: p for p in load_predictions(path)}
    assert (predictions['a'].status, predictions['a'].box) == ('rejected', None)
    assert (predictions['b'].status, predictions['b'].box) == ('grounded', Box(1, 2, 3, 4))
    assert (predictions['c'].status, predictions['c'].box) == ('ambiguous', None)


def _image_sample(directory: Path, sample_id: str, l1: str, bbox: Box | None) -> GroundingSample:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    cv2.imwrite(str(directory / f'{sample_id}.png'), image)
    return GroundingSample(
        sample_id, 'the red cube', l1, bbox=bbox, image_path=directory / f'{sample_id}.png'
    )


def test_evaluate_turns_per_sample_failures_into_errors(tmp_path: Path) -> None:
    samples = [
        _image_sample(tmp_path, 'ok', 'Spatial', Box(1, 1, 9, 9)),
        _image_sample(tmp_path, 'boom', 'Spatial', Box(1, 1, 9, 9)),
        GroundingSample('gone', 'x', 'Rejection', image_path=tmp_path / 'missing.png'),
    ]

    def predict(sample: GroundingSample, image: np.ndarray) -> Prediction:
        if sample.id == 'boom':
            raise RuntimeError('backend exploded')
        assert image.shape == (40, 60, 3)
        return Prediction(sample.id, 'grounded', Box(1, 1, 9, 9))

    metrics = evaluate(samples, predict, progress=False)
    by_id = {s.sample_id: s for s in metrics.samples}
    assert by_id['ok'].correct_50
    assert by_id['boom'].status == 'error'
    assert 'backend exploded' in by_id['boom'].reason
    assert by_id['gone'].status == 'error'
    assert 'not found' in by_id['gone'].reason


class _ExpressionBackendDouble:
    """Stands in for a generative VLM (none can be loaded here): boxes only the red cube."""

    name = 'expression-double'
    supports_expression = True

    def ground_expression(self, image: np.ndarray, description: str):
        from grounding_agent.core.types import Detection

        if 'red' not in description:
            return None
        return Detection(Box(1, 1, 9, 9), description, 0.9)


def test_groundingme_prompt_mode_scores_none_as_rejection(tmp_path: Path) -> None:
    samples = [
        _image_sample(tmp_path, 'pos', 'Spatial', Box(1, 1, 9, 9)),
        GroundingSample('rej', 'the blue cube', 'Rejection', image_path=tmp_path / 'pos.png'),
    ]
    metrics = evaluate(samples, ExpressionPredictor(_ExpressionBackendDouble()), progress=False)
    assert metrics.acc_50 == 1.0
    assert metrics.status_counts == {'grounded': 1, 'rejected': 1}


def test_groundingme_prompt_mode_refuses_detector_backends() -> None:
    class Detector:
        name = 'detector'
        supports_expression = False

    with pytest.raises(ConfigError, match='cannot ground whole expressions'):
        ExpressionPredictor(Detector())


def test_report_files_are_written(tmp_path: Path, scored) -> None:
    paths = write_report(tmp_path / 'out', scored, run={'backend': 'color_shape'})
    document = json.loads(paths['json'].read_text())
    assert document['metrics']['acc@0.5'] == pytest.approx(3 / 11)
    assert len(document['predictions']) == 11
    assert document['run']['backend'] == 'color_shape'
    markdown = paths['markdown'].read_text()
    assert '| Discriminative | 3 | 66.7 | 33.3 | 0.500 |' in markdown
    assert '| Overall | 11 | 27.3 | 18.2 |' in markdown
    assert paths['chart'].read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    chart = cv2.imread(str(paths['chart']))
    assert chart is not None
    assert chart.shape[0] > 100
    assert chart.shape[1] > 100


def test_markdown_names_wrong_rejections(scored) -> None:
    text = metrics_markdown(scored)
    assert 'wrongly rejected: 16.7 % of 6' in text


def test_run_evaluation_scores_a_saved_prediction_file(tmp_path: Path) -> None:
    annotations, predictions = _write_fixture(tmp_path)
    metrics = run_evaluation(
        annotations, out_dir=tmp_path / 'out', predictions_file=predictions, progress=False
    )
    assert metrics.acc_50 == pytest.approx(3 / 11)
    assert (tmp_path / 'out' / 'results.md').is_file()


def _drawn_benchmark(directory: Path) -> Path:
    """A three-sample benchmark in GroundingME's record format on one drawn table image."""
    image = np.full((120, 200, 3), (140, 115, 90), dtype=np.uint8)
    image[50:80, 30:60] = (220, 30, 30)  # red square: a cube seen face on
    image[50:80, 130:160] = (30, 60, 220)  # blue square
    cv2.imwrite(str(directory / 'table.png'), image[:, :, ::-1])
    records = [
        ('pos', 'the red cube', 'Discriminative', [30, 50, 60, 80]),
        ('rel', 'the cube right of the red cube', 'Spatial', [130, 50, 160, 80]),
        ('rej', 'the green cube', 'Rejection', None),
    ]
    path = directory / 'annotations.jsonl'
    with path.open('w') as stream:
        for sample_id, description, l1, bbox in records:
            record = {
                'id': sample_id, 'description': description, 'image': 'table.png',
                'bbox': bbox, 'subtask_l1': l1, 'subtask_l2': '', 'width': 200, 'height': 120,
            }  # fmt: skip
            stream.write(json.dumps(record) + '\n')
    return path


def test_eval_command_runs_the_agent_with_color_shape(tmp_path: Path) -> None:
    import argparse

    from grounding_agent.commands import eval as eval_command

    _drawn_benchmark(tmp_path)
    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    args = parser.parse_args(
        ['--dataset', str(tmp_path), '--out', str(tmp_path / 'out'), '--quiet']
    )
    assert eval_command.run(args) == 0
    document = json.loads((tmp_path / 'out' / 'results.json').read_text())
    statuses = {p['id']: p['status'] for p in document['predictions']}
    assert statuses == {'pos': 'grounded', 'rel': 'grounded', 'rej': 'rejected'}
    assert document['metrics']['acc@0.5'] == 1.0
    assert document['run']['backend'] == 'color_shape'
    assert document['metrics']['mean_latency_ms'] > 0


def test_eval_command_reports_a_missing_dataset(tmp_path: Path, capsys) -> None:
    import argparse

    from grounding_agent.commands import eval as eval_command

    parser = argparse.ArgumentParser()
    eval_command.add_arguments(parser)
    args = parser.parse_args(['--dataset', str(tmp_path / 'nope'), '--out', str(tmp_path)])
    assert eval_command.run(args) == 2
    assert 'dataset not found' in capsys.readouterr().err

"""Evaluate a backend on GroundingME-format samples with GroundingME's own scoring protocol.

A positive sample is correct when the predicted box overlaps the ground truth with IoU >= 0.5
(Acc@0.5; also Acc@0.75). A Rejection sample is correct only when the answer is `rejected`: an
`ambiguous`, `error` or `grounded` answer is wrong. Scoring (`score_predictions`) is pure; the
runner (`evaluate`, `run_evaluation`) asks the agent, or in `groundingme` prompt mode the
backend's whole-expression grounding, for one prediction per sample and never stops on a
per-sample failure.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.errors import ConfigError
from grounding_agent.core.types import Box
from grounding_agent.eval.formats import DatasetFormatError, GroundingSample, parse_box

__all__ = [
    'PROMPT_MODES',
    'AgentPredictor',
    'CategoryMetrics',
    'ExpressionPredictor',
    'Metrics',
    'Prediction',
    'SampleScore',
    'evaluate',
    'load_predictions',
    'run_evaluation',
    'score_predictions',
]

PROMPT_MODES = ('agent', 'groundingme')

#: Statuses whose target box is the prediction; every other answer predicts "no box".
_BOX_STATUSES = ('grounded', 'answered')


@dataclass(frozen=True)
class Prediction:
    """The answer to one sample: the result status and the box it points at (if any)."""

    sample_id: str
    status: str
    box: Box | None = None
    reason: str = ''
    latency_ms: float = 0.0


@dataclass(frozen=True)
class SampleScore:
    """One scored sample. `iou` is None on Rejection samples (scored by status alone)."""

    sample_id: str
    subtask_l1: str
    subtask_l2: str
    status: str
    predicted: Box | None
    truth: Box | None
    iou: float | None
    correct_50: bool
    correct_75: bool
    reason: str = ''
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            'id': self.sample_id,
            'subtask_l1': self.subtask_l1,
            'subtask_l2': self.subtask_l2,
            'status': self.status,
            'pred_bbox': self.predicted.to_list() if self.predicted is not None else None,
            'gt_bbox': self.truth.to_list() if self.truth is not None else None,
            'iou': self.iou,
            'correct@0.5': self.correct_50,
            'correct@0.75': self.correct_75,
            'reason': self.reason,
            'latency_ms': round(self.latency_ms, 3),
        }


@dataclass(frozen=True)
class CategoryMetrics:
    """Accuracy of one category; `mean_iou` over its positive samples (None if it has none)."""

    name: str
    n: int
    acc_50: float
    acc_75: float
    mean_iou: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            'n': self.n,
            'acc@0.5': self.acc_50,
            'acc@0.75': self.acc_75,
            'mean_iou': self.mean_iou,
        }


@dataclass(frozen=True)
class Metrics:
    """Everything the report shows. Rates are fractions (0..1)."""

    n_samples: int
    n_positive: int
    n_rejection: int
    acc_50: float
    acc_75: float
    mean_iou: float | None
    wrongly_rejected: float | None
    by_l1: dict[str, CategoryMetrics]
    by_l2: dict[str, CategoryMetrics]
    status_counts: dict[str, int]
    mean_latency_ms: float | None
    samples: tuple[SampleScore, ...] = field(default=(), repr=False)

    @property
    def overall(self) -> CategoryMetrics:
        return CategoryMetrics('Overall', self.n_samples, self.acc_50, self.acc_75, self.mean_iou)

    def to_dict(self) -> dict[str, Any]:
        """The summary without the per-sample rows."""
        return {
            'n_samples': self.n_samples,
            'n_positive': self.n_positive,
            'n_rejection': self.n_rejection,
            'acc@0.5': self.acc_50,
            'acc@0.75': self.acc_75,
            'mean_iou': self.mean_iou,
            'wrongly_rejected': self.wrongly_rejected,
            'by_l1': {name: value.to_dict() for name, value in self.by_l1.items()},
            'by_l2': {name: value.to_dict() for name, value in self.by_l2.items()},
            'status_counts': dict(self.status_counts),
            'mean_latency_ms': self.mean_latency_ms,
        }


def _mean(values: Sequence[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _score_one(sample: GroundingSample, prediction: Prediction) -> SampleScore:
    # Only a grounded / answered result points at something, whatever else it carries.
    predicted = prediction.box if prediction.status in _BOX_STATUSES else None
    if sample.is_rejection:
        correct = prediction.status == 'rejected'
        iou = None
        correct_50 = correct_75 = correct
    else:
        truth = sample.bbox
        iou = truth.iou(predicted) if truth is not None and predicted is not None else 0.0
        correct_50 = iou >= 0.5
        correct_75 = iou >= 0.75
    return SampleScore(
        sample_id=sample.id,
        subtask_l1=sample.subtask_l1,
        subtask_l2=sample.subtask_l2,
        status=prediction.status,
        predicted=predicted,
        truth=sample.bbox,
        iou=iou,
        correct_50=correct_50,
        correct_75=correct_75,
        reason=prediction.reason,
        latency_ms=prediction.latency_ms,
    )


def _category(name: str, scores: Sequence[SampleScore]) -> CategoryMetrics:
    n = len(scores)
    return CategoryMetrics(
        name=name,
        n=n,
        acc_50=sum(s.correct_50 for s in scores) / n if n else 0.0,
        acc_75=sum(s.correct_75 for s in scores) / n if n else 0.0,
        mean_iou=_mean([s.iou for s in scores if s.iou is not None]),
    )


def score_predictions(
    samples: Sequence[GroundingSample],
    predictions: Mapping[str, Prediction] | Iterable[Prediction],
) -> Metrics:
    """GroundingME's metrics for `predictions` (by sample id); a missing one counts as an error."""
    by_id = (
        dict(predictions)
        if isinstance(predictions, Mapping)
        else {p.sample_id: p for p in predictions}
    )
    scores = tuple(
        _score_one(
            sample,
            by_id.get(sample.id) or Prediction(sample.id, 'error', reason='no prediction'),
        )
        for sample in samples
    )
    groups_l1: dict[str, list[SampleScore]] = defaultdict(list)
    groups_l2: dict[str, list[SampleScore]] = defaultdict(list)
    for score in scores:
        groups_l1[score.subtask_l1].append(score)
        if score.subtask_l2:
            groups_l2[f'{score.subtask_l1}/{score.subtask_l2}'].append(score)
    positives = [s for s, sample in zip(scores, samples) if not sample.is_rejection]
    overall = _category('Overall', scores)
    return Metrics(
        n_samples=len(scores),
        n_positive=len(positives),
        n_rejection=len(scores) - len(positives),
        acc_50=overall.acc_50,
        acc_75=overall.acc_75,
        mean_iou=overall.mean_iou,
        wrongly_rejected=(
            sum(s.status == 'rejected' for s in positives) / len(positives) if positives else None
        ),
        by_l1={name: _category(name, group) for name, group in sorted(groups_l1.items())},
        by_l2={name: _category(name, group) for name, group in sorted(groups_l2.items())},
        status_counts=dict(sorted(Counter(s.status for s in scores).items())),
        mean_latency_ms=_mean([s.latency_ms for s in scores if s.latency_ms > 0]),
        samples=scores,
    )


def load_predictions(path: str | Path) -> list[Prediction]:
    """Predictions saved by another tool: JSONL / JSON records with `id`, `status` and a box.

    The box key may be `pred_bbox` (our results.json and GroundingME's evaluate.py), `bbox` or
    `box`. A record without `status` is `grounded` when it has a box and `rejected` otherwise,
    which is how GroundingME reads a null answer; an all-zero box is GroundingME's null.
    """
    path = Path(path)
    records: Any
    try:
        text = path.read_text(encoding='utf-8')
        if path.suffix == '.jsonl':
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            document = json.loads(text)
            records = (
                document.get('predictions', document.get('detailed_results', document))
                if isinstance(document, dict)
                else document
            )
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f'cannot read predictions {path}: {exc}') from exc
    if not isinstance(records, list):
        raise DatasetFormatError(f'{path}: expected a list of predictions')
    predictions = []
    for index, record in enumerate(records):
        where = f'{path.name}[{index}]'
        if not isinstance(record, dict) or 'id' not in record:
            raise DatasetFormatError(f'{where}: a prediction needs an id')
        raw = next((record[k] for k in ('pred_bbox', 'bbox', 'box') if k in record), None)
        box = parse_box(raw, where=where)
        status = str(record.get('status') or ('grounded' if box is not None else 'rejected'))
        predictions.append(
            Prediction(
                sample_id=str(record['id']),
                status=status,
                box=box if status in _BOX_STATUSES else None,
                reason=str(record.get('reason') or ''),
                latency_ms=float(record.get('latency_ms') or 0.0),
            )
        )
    return predictions


Predictor = Callable[[GroundingSample, npt.NDArray[np.uint8]], Prediction]


class AgentPredictor:
    """Ask the full agent (parser, backend, resolver) and take its target box."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent

    @classmethod
    def for_backend(cls, backend: Any, config: Any = None) -> AgentPredictor:
        from grounding_agent.core.agent import GroundingAgent
        from grounding_agent.core.config import ResolverConfig

        return cls(GroundingAgent(backend, config if config is not None else ResolverConfig()))

    def __call__(self, sample: GroundingSample, image: npt.NDArray[np.uint8]) -> Prediction:
        from grounding_agent.core.types import Frame

        started = time.perf_counter()
        result = self.agent.handle_command(
            sample.description, Frame(image=image), request_id=sample.id
        )
        latency = (time.perf_counter() - started) * 1000.0
        status = result.status.value
        box = (
            result.target.to_box()
            if status in _BOX_STATUSES and result.target is not None
            else None
        )
        return Prediction(sample.id, status, box, result.reason, latency)


class ExpressionPredictor:
    """GroundingME's own protocol: the whole description to the model, None = rejection."""

    def __init__(self, backend: Any) -> None:
        if not getattr(backend, 'supports_expression', False):
            raise ConfigError(
                f'backend {getattr(backend, "name", "?")!r} cannot ground whole expressions; '
                "use --prompt-mode agent or a generative backend such as 'qwen_vl'"
            )
        self.backend = backend

    def __call__(self, sample: GroundingSample, image: npt.NDArray[np.uint8]) -> Prediction:
        started = time.perf_counter()
        detection = self.backend.ground_expression(image, sample.description)
        latency = (time.perf_counter() - started) * 1000.0
        if detection is None:
            return Prediction(sample.id, 'rejected', None, 'model answered null', latency)
        return Prediction(sample.id, 'grounded', detection.box, detection.label, latency)


def evaluate(
    samples: Sequence[GroundingSample], predict: Predictor, *, progress: bool = True
) -> Metrics:
    """Predict every sample (a failure becomes an `error` prediction) and score them."""
    from tqdm import tqdm

    predictions: list[Prediction] = []
    for sample in tqdm(samples, desc='evaluating', unit='sample', disable=not progress):
        started = time.perf_counter()
        try:
            prediction = predict(sample, sample.load_image())
        except Exception as exc:  # one bad sample (image, backend) must not end the run
            latency = (time.perf_counter() - started) * 1000.0
            prediction = Prediction(
                sample.id, 'error', None, f'{type(exc).__name__}: {exc}', latency
            )
        predictions.append(prediction)
    return score_predictions(samples, predictions)


def run_evaluation(
    dataset: str | Path,
    *,
    out_dir: str | Path,
    backend_config: Any = None,
    resolver_config: Any = None,
    prompt_mode: str = 'agent',
    dataset_format: str = 'auto',
    split: str = 'val',
    images_dir: str | Path | None = None,
    limit: int | None = None,
    predictions_file: str | Path | None = None,
    progress: bool = True,
) -> Metrics:
    """Load a dataset, evaluate one backend on it and write results.json/.md and accuracy.png.

    With `predictions_file` no backend runs: the saved predictions are scored instead.
    """
    from grounding_agent.backends.base import BackendConfig, create_backend
    from grounding_agent.eval.formats import load_dataset
    from grounding_agent.eval.report import write_report

    if prompt_mode not in PROMPT_MODES:
        raise ConfigError(f'prompt mode must be one of {PROMPT_MODES}, got {prompt_mode!r}')
    config = backend_config if backend_config is not None else BackendConfig()
    samples = load_dataset(
        dataset, dataset_format=dataset_format, split=split, images_dir=images_dir, limit=limit
    )
    if predictions_file is not None:
        metrics = score_predictions(samples, load_predictions(predictions_file))
        run = {'dataset': str(dataset), 'predictions': str(predictions_file), 'limit': limit}
    else:
        backend = create_backend(config)
        try:
            predict: Predictor = (
                ExpressionPredictor(backend)
                if prompt_mode == 'groundingme'
                else AgentPredictor.for_backend(backend, resolver_config)
            )
            metrics = evaluate(samples, predict, progress=progress)
        finally:
            backend.close()
        run = {
            'dataset': str(dataset),
            'backend': config.name,
            'model': config.model,
            'prompt_mode': prompt_mode,
            'limit': limit,
        }
    write_report(out_dir, metrics, run=run)
    return metrics

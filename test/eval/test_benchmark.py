"""The simulated benchmark: GroundingME records whose answers are proven on the scene truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grounding_agent.cli import main
from grounding_agent.core.parser import parse_command
from grounding_agent.eval.benchmark import (
    MIN_TARGET_VISIBLE,
    OCCLUDED_RANGE,
    SEED_SPLITS,
    SUBTASKS,
    BenchmarkError,
    generate_benchmark,
    load_scene_truths,
    seed_split,
)
from grounding_agent.eval.formats import load_dataset
from grounding_agent.sim.truth import resolve_ref

pytestmark = pytest.mark.slow

KEYS = {'id', 'description', 'image', 'bbox', 'subtask_l1', 'subtask_l2', 'width', 'height'}


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / 'annotations.jsonl').read_text().splitlines()]


@pytest.fixture(scope='module')
def bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """200 samples (about 55 renders)."""
    out = tmp_path_factory.mktemp('bench')
    generate_benchmark(out, n_samples=200, seed=11)
    return out


def test_records_have_the_groundingme_keys_and_balanced_categories(bench: Path) -> None:
    records = _records(bench)
    assert len(records) == 200
    assert len({r['id'] for r in records}) == 200
    for record in records:
        assert set(record) >= KEYS
        assert record['subtask_l2'] in SUBTASKS[record['subtask_l1']]
        assert (bench / record['image']).is_file()
        assert (record['bbox'] is None) == (record['subtask_l1'] == 'Rejection')
        if record['bbox'] is not None:
            x1, y1, x2, y2 = record['bbox']
            assert 0 <= x1 < x2 <= record['width']
            assert 0 <= y1 < y2 <= record['height']
    for l1 in SUBTASKS:
        assert sum(r['subtask_l1'] == l1 for r in records) == 50
    meta = json.loads((bench / 'meta.json').read_text())
    assert meta['n_samples'] == 200
    assert {l1: sum(c.values()) for l1, c in meta['counts'].items()} == dict.fromkeys(SUBTASKS, 50)
    # Every subtask of a category occurs.
    assert all(n > 0 for counts in meta['counts'].values() for n in counts.values())


def test_every_description_parses_and_denotes_its_answer(bench: Path) -> None:
    """Through the command parser and the ground-truth checker: positives name exactly their
    target, rejections nothing."""
    truths = load_scene_truths(bench)
    for record in _records(bench):
        query = parse_command(record['description'])
        match = resolve_ref(query.target, truths[record['image']])
        if record['bbox'] is None:
            assert match.empty, (record['description'], match)
        else:
            assert match.unique == record['target'], (record['description'], match)


def test_boxes_and_visibility_come_from_the_scene_truth(bench: Path) -> None:
    truths = load_scene_truths(bench)
    for record in _records(bench):
        if record['bbox'] is None:
            continue
        target = next(o for o in truths[record['image']] if o.name == record['target'])
        assert target.box.to_list() == record['bbox']
        if record['subtask_l2'] == 'occluded':
            assert OCCLUDED_RANGE[0] <= target.visible_fraction <= OCCLUDED_RANGE[1]
        else:
            assert target.visible_fraction >= MIN_TARGET_VISIBLE


def test_rejections_change_one_detail_of_a_valid_description(bench: Path) -> None:
    truths = load_scene_truths(bench)
    for record in _records(bench):
        if record['subtask_l1'] != 'Rejection':
            continue
        source = parse_command(record['source_description']).target
        assert resolve_ref(source, truths[record['image']]).unique is not None
        before, after = record['changed'].split(' -> ')
        assert before != after
        changed = set(record['description'].split()) ^ set(record['source_description'].split())
        assert 1 <= len(changed) <= 4, record  # the one detail, e.g. 'in front of' -> 'behind'


def test_descriptions_come_in_many_phrasings(bench: Path) -> None:
    records = _records(bench)
    assert len({r['phrasing'] for r in records}) >= 25
    texts = ' | '.join(r['description'] for r in records)
    for phrase in ('that is', 'ball', 'block', 'left of', 'behind', 'from the', 'partly'):
        assert phrase in texts, phrase


def test_the_evaluator_reads_the_benchmark(bench: Path) -> None:
    samples = load_dataset(bench)
    assert len(samples) == 200
    assert sum(s.is_rejection for s in samples) == 50
    assert samples[0].load_image().shape == (480, 640, 3)


def test_same_seed_same_benchmark_with_any_worker_count(tmp_path: Path) -> None:
    assert main(['make-benchmark', '--out', str(tmp_path / 'a'), '--samples', '8',
                 '--seed', '5', '--workers', '1', '--quiet']) == 0  # fmt: skip
    generate_benchmark(tmp_path / 'b', n_samples=8, seed=5, workers=2)
    generate_benchmark(tmp_path / 'c', n_samples=8, seed=6)
    a, b, c = (tmp_path / name for name in 'abc')
    assert (a / 'annotations.jsonl').read_bytes() == (b / 'annotations.jsonl').read_bytes()
    assert (a / 'annotations.jsonl').read_bytes() != (c / 'annotations.jsonl').read_bytes()
    images = sorted(p.name for p in (a / 'images').iterdir())
    assert images == sorted(p.name for p in (b / 'images').iterdir())
    for name in images:
        assert (a / 'images' / name).read_bytes() == (b / 'images' / name).read_bytes()
    # The command refuses to write over a benchmark.
    assert main(['make-benchmark', '--out', str(a), '--samples', '8', '--quiet']) == 2


@pytest.mark.parametrize(
    'kwargs', [{'n_samples': 3}, {'n_samples': 8, 'seed': -1}, {'n_samples': 8, 'workers': 0}]
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(BenchmarkError):
        generate_benchmark(tmp_path, **kwargs)


def test_a_randomised_benchmark_names_its_preset_and_seed_split(tmp_path: Path) -> None:
    assert seed_split(150) == 'calibration'
    assert seed_split(250) == 'test'
    assert seed_split(7) is None
    assert not set(SEED_SPLITS['calibration']) & set(SEED_SPLITS['test'])
    assert main(['make-benchmark', '--out', str(tmp_path / 'r'), '--samples', '8', '--seed',
                 '201', '--preset', 'randomised', '--workers', '1', '--quiet']) == 0  # fmt: skip
    meta = json.loads((tmp_path / 'r' / 'meta.json').read_text())
    assert (meta['preset'], meta['split'], meta['n_samples']) == ('randomised', 'test', 8)
    scenes = [
        json.loads(line) for line in (tmp_path / 'r' / 'scenes.jsonl').read_text().splitlines()
    ]
    assert {scene['spec']['preset'] for scene in scenes} == {'randomised'}
    truths = load_scene_truths(tmp_path / 'r')
    for record in _records(tmp_path / 'r'):
        match = resolve_ref(parse_command(record['description']).target, truths[record['image']])
        if record['bbox'] is None:
            assert match.empty, (record['description'], match)
        else:
            assert match.unique == record['target'], (record['description'], match)
    with pytest.raises(BenchmarkError, match='unknown preset'):
        generate_benchmark(tmp_path / 'x', n_samples=8, preset='sunny')

"""Readers of GroundingME-format records and RefCOCO refs pickles, on small files in tmp_path."""

from __future__ import annotations

import base64
import json
import os
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest

from grounding_agent.core.types import Box
from grounding_agent.eval.formats import (
    DatasetFormatError,
    detect_format,
    load_dataset,
    read_groundingme,
    read_refcoco,
)


def _record(sample_id: str, **changes: object) -> dict[str, object]:
    record: dict[str, object] = {
        'id': sample_id, 'description': 'the red cube left of the blue ball',
        'image': f'images/{sample_id}.png', 'bbox': [10, 20, 30, 50],
        'subtask_l1': 'Spatial', 'subtask_l2': 'left_of', 'width': 64, 'height': 48,
    }  # fmt: skip
    record.update(changes)
    return record


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text(''.join(json.dumps(r) + '\n' for r in records), encoding='utf-8')
    return path


def _png(colour: tuple[int, int, int] = (200, 30, 40)) -> bytes:
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    image[:] = colour[::-1]  # written as BGR, read back as RGB
    ok, buffer = cv2.imencode('.png', image)
    assert ok
    return buffer.tobytes()


def test_groundingme_jsonl_reads_records_and_relative_images(tmp_path: Path) -> None:
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.png').write_bytes(_png())
    path = _write_jsonl(
        tmp_path / 'annotations.jsonl',
        [_record('a'), _record('r', subtask_l1='Rejection', subtask_l2='absent', bbox=None)],
    )
    positive, rejection = read_groundingme(path)
    assert positive.bbox == Box(10, 20, 30, 50)
    assert not positive.is_rejection
    assert positive.image_path == tmp_path / 'images' / 'a.png'
    assert (positive.width, positive.height, positive.subtask_l2) == (64, 48, 'left_of')
    assert rejection.is_rejection
    assert rejection.bbox is None
    image = positive.load_image()
    assert image.shape == (48, 64, 3)
    assert image.dtype == np.uint8
    assert tuple(image[0, 0]) == (200, 30, 40)


def test_rejection_box_is_ignored_and_zero_box_is_null(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / 'a.jsonl',
        [
            _record('r1', subtask_l1='Rejection', bbox=[1, 2, 3, 4]),
            _record('r2', subtask_l1='Rejection', bbox=[0, 0, 0, 0]),
        ],
    )
    assert [s.bbox for s in read_groundingme(path)] == [None, None]


def test_json_list_wrapped_in_object_with_embedded_base64_image(tmp_path: Path) -> None:
    encoded = base64.b64encode(_png((0, 0, 255))).decode()
    path = tmp_path / 'test.json'
    path.write_text(json.dumps({'test': [_record('b', image={'bytes': encoded, 'path': None})]}))
    (sample,) = read_groundingme(path)
    assert sample.image_bytes is not None
    assert tuple(sample.load_image()[5, 5]) == (0, 0, 255)


@pytest.mark.parametrize(
    ('record', 'message'),
    [
        (_record('x', bbox=[10, 20, 5, 50]), 'swapped'),
        (_record('x', bbox=[1, 2, 3]), 'bbox must be'),
        (_record('x', bbox=['a', 2, 3, 4]), 'non-number'),
        (_record('x', bbox=None), 'needs a bbox'),
        (_record('x', image=7), 'image must be'),
        ({'id': 'x', 'image': 'a.png'}, 'missing keys'),
        ([1, 2], 'expected a JSON object'),
    ],
)
def test_bad_records_raise_format_errors(tmp_path: Path, record: object, message: str) -> None:
    path = tmp_path / 'a.jsonl'
    path.write_text(json.dumps(record) + '\n')
    with pytest.raises(DatasetFormatError, match=message):
        read_groundingme(path)


def test_invalid_json_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / 'a.jsonl'
    path.write_text(json.dumps(_record('a')) + '\n{not json\n')
    with pytest.raises(DatasetFormatError, match=r'a\.jsonl:2'):
        read_groundingme(path)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / 'a.jsonl', [_record('a'), _record('a')])
    with pytest.raises(DatasetFormatError, match='duplicate'):
        read_groundingme(path)


def test_missing_and_corrupt_images_raise_format_errors(tmp_path: Path) -> None:
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'bad.png').write_bytes(b'not a png')
    path = _write_jsonl(tmp_path / 'a.jsonl', [_record('gone'), _record('bad')])
    gone, bad = read_groundingme(path)
    with pytest.raises(DatasetFormatError, match='not found'):
        gone.load_image()
    with pytest.raises(DatasetFormatError, match='cannot decode'):
        bad.load_image()


def _write_refcoco(directory: Path) -> None:
    refs = [
        {'ref_id': 0, 'ann_id': 100, 'image_id': 1, 'split': 'val', 'category_id': 47,
         'sentences': [{'sent_id': 5, 'sent': 'red cup on the left', 'raw': 'Red cup, left'},
                       {'sent_id': 6, 'sent': 'leftmost cup', 'raw': 'leftmost cup'}]},
        {'ref_id': 1, 'ann_id': 101, 'image_id': 1, 'split': 'testA', 'category_id': 1,
         'sentences': [{'sent_id': 7, 'sent': 'man in blue', 'raw': 'man in blue'}]},
    ]  # fmt: skip
    instances = {
        'images': [{'id': 1, 'file_name': 'COCO_train2014_000000000001.jpg', 'width': 640,
                    'height': 480}],
        'annotations': [{'id': 100, 'image_id': 1, 'bbox': [10.0, 20.0, 30.0, 40.0]},
                        {'id': 101, 'image_id': 1, 'bbox': [0, 0, 5, 5]}],
        'categories': [{'id': 47, 'name': 'cup'}, {'id': 1, 'name': 'person'}],
    }  # fmt: skip
    with (directory / 'refs(unc).p').open('wb') as stream:
        pickle.dump(refs, stream, protocol=2)
    (directory / 'instances.json').write_text(json.dumps(instances))


def test_refcoco_sentences_become_positive_samples(tmp_path: Path) -> None:
    _write_refcoco(tmp_path)
    samples = read_refcoco(
        tmp_path, split='val', images_dir=tmp_path / 'train2014', name='RefCOCO'
    )
    assert [s.description for s in samples] == ['red cup on the left', 'leftmost cup']
    assert all(s.bbox == Box(10, 20, 40, 60) for s in samples)  # xywh -> xyxy
    assert all(not s.is_rejection for s in samples)
    assert samples[0].id == '0_5'
    assert samples[0].subtask_l1 == 'RefCOCO'
    assert samples[0].subtask_l2 == 'cup'
    assert samples[0].image_path == tmp_path / 'train2014' / 'COCO_train2014_000000000001.jpg'
    assert (samples[0].width, samples[0].height) == (640, 480)


def test_refcoco_split_is_selectable_and_detected(tmp_path: Path) -> None:
    _write_refcoco(tmp_path)
    assert detect_format(tmp_path) == 'refcoco'
    samples = load_dataset(tmp_path, split='testA')
    assert [s.description for s in samples] == ['man in blue']
    with pytest.raises(DatasetFormatError, match='no refs in split'):
        read_refcoco(tmp_path, split='testB')


class _Payload:
    """A pickled object whose loading would run code."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.getcwd, ())  # harmless, but a class lookup all the same


def test_refcoco_pickle_with_code_is_refused(tmp_path: Path) -> None:
    _write_refcoco(tmp_path)
    with (tmp_path / 'refs(unc).p').open('wb') as stream:
        pickle.dump([_Payload()], stream)
    with pytest.raises(DatasetFormatError, match='refusing to load'):
        read_refcoco(tmp_path)


def test_dataset_directory_prefers_annotations_jsonl_and_applies_limit(tmp_path: Path) -> None:
    _write_jsonl(tmp_path / 'annotations.jsonl', [_record('a'), _record('b'), _record('c')])
    _write_jsonl(tmp_path / 'other.jsonl', [_record('z')])
    assert detect_format(tmp_path) == 'groundingme'
    assert [s.id for s in load_dataset(tmp_path, limit=2)] == ['a', 'b']


@pytest.mark.parametrize(
    ('name', 'message'),
    [('missing', 'not found'), ('empty_dir', 'no annotations.jsonl'), ('a.txt', 'unknown')],
)
def test_unknown_datasets_are_refused(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / 'empty_dir').mkdir()
    (tmp_path / 'a.txt').write_text('x')
    with pytest.raises(DatasetFormatError, match=message):
        load_dataset(tmp_path / name)


def test_parquet_shards_with_embedded_images(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip('pyarrow', reason='pyarrow is not installed')
    import pyarrow.parquet as pq

    row = _record('p', image={'bytes': _png(), 'path': 'p.png'})
    (tmp_path / 'data').mkdir()
    pq.write_table(pyarrow.Table.from_pylist([row]), tmp_path / 'data' / 'test-0.parquet')
    (sample,) = load_dataset(tmp_path)
    assert sample.bbox == Box(10, 20, 30, 50)
    assert sample.load_image().shape == (48, 64, 3)

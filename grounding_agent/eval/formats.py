"""Readers of grounding benchmark annotations: GroundingME records and the RefCOCO family.

Every reader returns `GroundingSample`s, the record the evaluator scores. The GroundingME layout
is the one its authors publish (a Hugging Face dataset whose rows hold `id, description, image,
bbox [x1, y1, x2, y2], subtask_l1, subtask_l2, width, height`); our simulated benchmark writes the
same keys to `annotations.jsonl` with `image` a path relative to the file. RefCOCO comes as the
`refs(<split_by>).p` pickle plus COCO `instances.json`; each referring sentence is one positive
sample.
"""

from __future__ import annotations

import base64
import json
import math
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grounding_agent.core.types import Box
from grounding_agent.eval.errors import EvalError

__all__ = [
    'REJECTION',
    'DatasetFormatError',
    'GroundingSample',
    'detect_format',
    'load_dataset',
    'parse_box',
    'read_groundingme',
    'read_groundingme_parquet',
    'read_refcoco',
]

#: The GroundingME L-1 category of samples whose described object is absent.
REJECTION = 'Rejection'

_GROUNDINGME_KEYS = ('description', 'subtask_l1')


class DatasetFormatError(EvalError):
    """An annotation file cannot be read; the message names the file and what is wrong."""


@dataclass(frozen=True)
class GroundingSample:
    """One referring expression to ground in one image, with its ground truth.

    `bbox` is None exactly for Rejection samples (the described object is absent). The image is a
    file (`image_path`) or, for datasets that embed their images, encoded bytes (`image_bytes`).
    """

    id: str
    description: str
    subtask_l1: str
    subtask_l2: str = ''
    bbox: Box | None = None
    image_path: Path | None = None
    image_bytes: bytes | None = None
    width: int = 0
    height: int = 0

    @property
    def is_rejection(self) -> bool:
        return self.subtask_l1.strip().lower() == REJECTION.lower()

    def load_image(self) -> npt.NDArray[np.uint8]:
        """The image as HxWx3 uint8 RGB; raises DatasetFormatError when it cannot be read."""
        import cv2

        if self.image_bytes is not None:
            buffer = np.frombuffer(self.image_bytes, dtype=np.uint8)
            bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
            source = f'embedded image of sample {self.id!r}'
        elif self.image_path is not None:
            # imdecode(fromfile) instead of imread: imread cannot tell "missing" from "corrupt".
            if not self.image_path.is_file():
                raise DatasetFormatError(f'image file not found: {self.image_path}')
            buffer = np.fromfile(str(self.image_path), dtype=np.uint8)
            bgr = cv2.imdecode(buffer, cv2.IMREAD_COLOR) if buffer.size else None
            source = str(self.image_path)
        else:
            raise DatasetFormatError(f'sample {self.id!r} has no image')
        if bgr is None:
            raise DatasetFormatError(f'cannot decode {source}')
        return np.ascontiguousarray(bgr[:, :, ::-1])


def parse_box(value: Any, *, where: str) -> Box | None:
    """[x1, y1, x2, y2] or None; an all-zero box (GroundingME's "no box") is None."""
    if value is None:
        return None
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)) or len(value) != 4:
        raise DatasetFormatError(f'{where}: bbox must be [x1, y1, x2, y2] or null, got {value!r}')
    try:
        coords = [float(v) for v in value]
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(f'{where}: bbox has a non-number: {value!r}') from exc
    if not all(math.isfinite(c) for c in coords):
        raise DatasetFormatError(f'{where}: bbox is not finite: {value!r}')
    if coords == [0.0, 0.0, 0.0, 0.0]:
        return None
    x1, y1, x2, y2 = coords
    if x2 < x1 or y2 < y1:
        raise DatasetFormatError(f'{where}: bbox corners are swapped: {value!r}')
    return Box(x1, y1, x2, y2)


def _image_source(value: Any, base_dir: Path, *, where: str) -> tuple[Path | None, bytes | None]:
    """A record's `image`: a path (relative to `base_dir`) or a {'bytes', 'path'} dict."""
    if isinstance(value, str):
        path = Path(value)
        return (path if path.is_absolute() else base_dir / path), None
    if isinstance(value, Mapping):
        raw = value.get('bytes')
        if isinstance(raw, (bytes, bytearray)):
            return None, bytes(raw)
        if isinstance(raw, str) and raw:
            try:
                return None, base64.b64decode(raw, validate=True)
            except ValueError as exc:
                raise DatasetFormatError(f'{where}: image bytes are not base64') from exc
        if isinstance(value.get('path'), str) and value['path']:
            return _image_source(value['path'], base_dir, where=where)
    raise DatasetFormatError(
        f'{where}: image must be a path or a {{"bytes", "path"}} object, '
        f'got {type(value).__name__}'
    )


def _sample_from_record(record: Any, base_dir: Path, *, where: str) -> GroundingSample:
    if not isinstance(record, Mapping):
        raise DatasetFormatError(f'{where}: expected a JSON object, got {type(record).__name__}')
    missing = [key for key in (*_GROUNDINGME_KEYS, 'image') if key not in record]
    if missing:
        raise DatasetFormatError(f'{where}: missing keys {missing}')
    description = record['description']
    if not isinstance(description, str):
        raise DatasetFormatError(f'{where}: description must be a string')
    subtask_l1 = str(record['subtask_l1'])
    is_rejection = subtask_l1.strip().lower() == REJECTION.lower()
    bbox = parse_box(record.get('bbox'), where=where)
    if is_rejection:
        # GroundingME scores a Rejection sample by the answer alone; any stored box is ignored.
        bbox = None
    elif bbox is None:
        raise DatasetFormatError(f'{where}: a {subtask_l1} sample needs a bbox')
    image_path, image_bytes = _image_source(record['image'], base_dir, where=where)
    return GroundingSample(
        id=str(record.get('id', where)),
        description=description,
        subtask_l1=subtask_l1,
        subtask_l2=str(record.get('subtask_l2') or ''),
        bbox=bbox,
        image_path=image_path,
        image_bytes=image_bytes,
        width=int(record.get('width') or 0),
        height=int(record.get('height') or 0),
    )


def _json_records(path: Path) -> Iterable[tuple[str, Any]]:
    """(location, record) pairs of a .jsonl file (one object a line) or a .json list."""
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetFormatError(f'cannot read {path}: {exc}') from exc
    if path.suffix == '.jsonl':
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield f'{path.name}:{number}', json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetFormatError(f'{path.name}:{number}: invalid JSON: {exc}') from exc
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetFormatError(f'{path}: invalid JSON: {exc}') from exc
    if isinstance(document, Mapping):
        # Exports wrap the rows in one top-level list: {"data": [...]} / {"test": [...]}.
        lists = [value for value in document.values() if isinstance(value, list)]
        if len(lists) != 1:
            raise DatasetFormatError(f'{path}: expected a list of records or one list inside')
        document = lists[0]
    if not isinstance(document, list):
        raise DatasetFormatError(f'{path}: expected a list of records')
    for index, record in enumerate(document):
        yield f'{path.name}[{index}]', record


def read_groundingme(path: str | Path) -> list[GroundingSample]:
    """GroundingME-format records of a .jsonl / .json file; image paths relative to its folder."""
    path = Path(path)
    samples = [
        _sample_from_record(record, path.parent, where=where)
        for where, record in _json_records(path)
    ]
    _check_unique_ids(samples, path)
    return samples


def read_groundingme_parquet(paths: Sequence[str | Path]) -> list[GroundingSample]:
    """The official Hugging Face parquet shards (images embedded); needs `pyarrow`."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DatasetFormatError(
            'reading parquet needs pyarrow (pip install pyarrow), or export the dataset to '
            'JSONL with the keys id, description, image, bbox, subtask_l1, subtask_l2'
        ) from exc
    samples: list[GroundingSample] = []
    for shard in sorted(Path(p) for p in paths):
        try:
            rows = pq.read_table(shard).to_pylist()
        except Exception as exc:  # pyarrow raises its own hierarchy; name the shard
            raise DatasetFormatError(f'cannot read {shard}: {exc}') from exc
        samples.extend(
            _sample_from_record(row, shard.parent, where=f'{shard.name}[{index}]')
            for index, row in enumerate(rows)
        )
    _check_unique_ids(samples, Path(paths[0]) if paths else Path('.'))
    return samples


def _check_unique_ids(samples: Sequence[GroundingSample], source: Path) -> None:
    seen: set[str] = set()
    for sample in samples:
        if sample.id in seen:
            raise DatasetFormatError(f'{source}: duplicate sample id {sample.id!r}')
        seen.add(sample.id)


class _PlainDataUnpickler(pickle.Unpickler):
    """Loads only plain containers: a downloaded pickle must not be able to run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise DatasetFormatError(f'refusing to load {module}.{name} from a refs pickle')


def _load_refs(path: Path) -> list[Any]:
    try:
        with path.open('rb') as stream:
            # latin1: the published refs files were pickled by Python 2.
            refs = _PlainDataUnpickler(stream, encoding='latin1').load()
    except DatasetFormatError:
        raise
    except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DatasetFormatError(f'cannot read {path}: {exc}') from exc
    if not isinstance(refs, list):
        raise DatasetFormatError(f'{path}: expected a list of refs')
    return refs


def read_refcoco(
    directory: str | Path,
    *,
    split: str = 'val',
    refs_file: str | None = None,
    images_dir: str | Path | None = None,
    name: str | None = None,
) -> list[GroundingSample]:
    """RefCOCO-family samples of one split: one positive sample per referring sentence.

    `directory` holds `refs(<split_by>).p` (the first one found unless `refs_file` names it) and
    `instances.json`. Images are looked up in `images_dir` (default `directory/images`) by the
    COCO file name. Boxes are converted from COCO [x, y, w, h] to [x1, y1, x2, y2].
    """
    directory = Path(directory)
    if refs_file is not None:
        refs_path = directory / refs_file
    else:
        candidates = sorted(directory.glob('refs(*).p'))
        if not candidates:
            raise DatasetFormatError(f'no refs(<split_by>).p file in {directory}')
        refs_path = candidates[0]
    instances_path = directory / 'instances.json'
    try:
        instances = json.loads(instances_path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(f'cannot read {instances_path}: {exc}') from exc
    try:
        annotations = {ann['id']: ann for ann in instances['annotations']}
        images = {image['id']: image for image in instances['images']}
        categories = {cat['id']: cat.get('name', '') for cat in instances.get('categories', [])}
    except (KeyError, TypeError) as exc:
        raise DatasetFormatError(f'{instances_path}: not a COCO instances file ({exc})') from exc
    image_root = Path(images_dir) if images_dir is not None else directory / 'images'
    label = name or directory.name or 'RefCOCO'
    samples: list[GroundingSample] = []
    for index, ref in enumerate(_load_refs(refs_path)):
        where = f'{refs_path.name}[{index}]'
        try:
            if ref['split'] != split:
                continue
            ann = annotations[ref['ann_id']]
            image = images[ref['image_id']]
            x, y, w, h = (float(v) for v in ann['bbox'])
            sentences = ref['sentences']
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetFormatError(f'{where}: incomplete ref ({exc!r})') from exc
        box = parse_box([x, y, x + w, y + h], where=where)
        for sentence in sentences:
            text = sentence.get('sent') or sentence.get('raw') or ''
            samples.append(
                GroundingSample(
                    id=f'{ref["ref_id"]}_{sentence.get("sent_id", len(samples))}',
                    description=str(text),
                    subtask_l1=label,
                    subtask_l2=str(categories.get(ref.get('category_id'), '')),
                    bbox=box,
                    image_path=image_root / str(image['file_name']),
                    width=int(image.get('width') or 0),
                    height=int(image.get('height') or 0),
                )
            )
    if not samples:
        raise DatasetFormatError(f'{refs_path}: no refs in split {split!r}')
    return samples


def detect_format(path: str | Path) -> str:
    """'groundingme', 'groundingme-parquet' or 'refcoco' for a dataset file or directory."""
    path = Path(path)
    if path.is_file():
        if path.suffix == '.parquet':
            return 'groundingme-parquet'
        if path.suffix in ('.json', '.jsonl'):
            return 'groundingme'
        raise DatasetFormatError(f'unknown dataset file type: {path}')
    if not path.is_dir():
        raise DatasetFormatError(f'dataset not found: {path}')
    if any(path.glob('refs(*).p')) and (path / 'instances.json').is_file():
        return 'refcoco'
    if _groundingme_files(path):
        return 'groundingme'
    if list(path.glob('**/*.parquet')):
        return 'groundingme-parquet'
    raise DatasetFormatError(
        f'{path}: no annotations.jsonl, *.jsonl / *.json records, *.parquet shards or '
        'refs(<split_by>).p + instances.json found'
    )


def _groundingme_files(directory: Path) -> list[Path]:
    preferred = directory / 'annotations.jsonl'
    if preferred.is_file():
        return [preferred]
    jsonl = sorted(directory.glob('*.jsonl'))
    return jsonl if jsonl else sorted(directory.glob('*.json'))


def load_dataset(
    path: str | Path,
    *,
    dataset_format: str = 'auto',
    split: str = 'val',
    images_dir: str | Path | None = None,
    limit: int | None = None,
) -> list[GroundingSample]:
    """Every sample of a dataset file or directory, in file order (the first `limit` if given)."""
    path = Path(path)
    chosen = detect_format(path) if dataset_format == 'auto' else dataset_format
    if chosen == 'refcoco':
        samples = read_refcoco(path, split=split, images_dir=images_dir)
    elif chosen == 'groundingme':
        files = [path] if path.is_file() else _groundingme_files(path)
        if not files:
            raise DatasetFormatError(f'no .jsonl / .json annotation file in {path}')
        samples = [sample for file in files for sample in read_groundingme(file)]
    elif chosen == 'groundingme-parquet':
        shards = [path] if path.is_file() else sorted(path.glob('**/*.parquet'))
        samples = read_groundingme_parquet(shards)
    else:
        raise DatasetFormatError(
            f'unknown dataset format {chosen!r}; use auto, groundingme, groundingme-parquet '
            'or refcoco'
        )
    if limit is not None:
        samples = samples[: max(0, limit)]
    return samples

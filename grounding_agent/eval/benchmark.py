"""The simulated grounding benchmark: GroundingME's record format on seeded PyBullet scenes.

`generate_benchmark` renders tabletop scenes (`grounding_agent.sim`) and writes referring
expressions about them in GroundingME's four categories, each with a proven answer:

- Discriminative (colour, shape, size): the one attribute that tells the target from a
  same-class distractor.
- Spatial (relation, nested_relation, ordinal, superlative): where it is, relative to other
  objects or in a row.
- Limited (small, occluded): a target small in the image, or partly hidden.
- Rejection (wrong_colour, wrong_size, wrong_shape, wrong_relation): a positive description with
  exactly one detail changed so that nothing matches.

Every description is built as a structured reference, realised as text in one of several
phrasings with the words of `core/vocabulary.py`, and checked against the render's ground truth
by `grounding_agent.sim.truth.resolve_ref` (viewer's perspective, 'front' = closer to the camera):
a positive sample is kept only if it denotes exactly one object without doubt, a rejection only
if it denotes nothing without doubt. Nothing here looks at any backend's output.

Output (`out_dir`): `images/NNNNN.png` (one per scene, shared by that scene's samples),
`annotations.jsonl` (one record per sample), `scenes.jsonl` (each scene's spec and per-object
ground truth), `meta.json` (generator version, seed, counts per category, thresholds).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2

from grounding_agent.core.types import (
    ObjectRef,
    Ordinal,
    OrdinalOrder,
    Relation,
    RelationConstraint,
)
from grounding_agent.core.vocabulary import COLOURS
from grounding_agent.eval.errors import EvalError
from grounding_agent.sim.look import PRESETS
from grounding_agent.sim.scene import SHAPES, SIZES, generate_scene
from grounding_agent.sim.truth import TruthMatch, relation_truth, resolve_ref
from grounding_agent.sim.world import ObjectTruth, render_scene

__all__ = [
    'GENERATOR_VERSION',
    'MIN_TARGET_PIXELS',
    'MIN_TARGET_VISIBLE',
    'OCCLUDED_RANGE',
    'SEED_SPLITS',
    'SMALL_AREA_FRACTION',
    'SUBTASKS',
    'BenchmarkError',
    'SceneSamples',
    'generate_benchmark',
    'load_scene_truths',
    'scene_samples',
    'seed_split',
]

GENERATOR_VERSION = 'grounding_agent/sim_benchmark/1'

SUBTASKS: dict[str, tuple[str, ...]] = {
    'Discriminative': ('colour', 'size', 'shape'),
    'Spatial': ('relation', 'nested_relation', 'ordinal', 'superlative'),
    'Limited': ('small', 'occluded'),
    'Rejection': ('wrong_colour', 'wrong_size', 'wrong_shape', 'wrong_relation'),
}

# Targets of every category but 'occluded' show at least this fraction of themselves and this
# many pixels; anchors (the objects a relation refers to) at least MIN_ANCHOR_VISIBLE.
MIN_TARGET_VISIBLE = 0.8
MIN_TARGET_PIXELS = 150
MIN_ANCHOR_VISIBLE = 0.5
# 'occluded' targets: visible fraction in this range, and not cut by the image border.
OCCLUDED_RANGE = (0.3, 0.8)
# 'small' targets: box area at most this fraction of the image (0.35 % = ~1,075 px at 640x480).
SMALL_AREA_FRACTION = 0.0035
# A scene seed is `seed * SCENE_SEED_STRIDE + scene index`.
SCENE_SEED_STRIDE = 100_000
#: Benchmark seeds by use (docs/simulation.md): thresholds are calibrated on benchmarks of
#: calibration seeds only, figures are reported on benchmarks of test seeds. Seeds outside both
#: (0-99: the fixed preset's history, the shape model's scenes) are neither.
SEED_SPLITS: dict[str, range] = {'calibration': range(100, 200), 'test': range(200, 300)}
# Scene generation for the benchmark: object counts and the share of scenes with an occluder.
_N_OBJECTS = (4, 8)
_OCCLUDER_SHARE = 0.5

# -- words ----------------------------------------------------------------------------------------

_NOUNS = {
    'cube': ('cube', 'block', 'box'),
    'sphere': ('sphere', 'ball'),
    'cylinder': ('cylinder', 'can'),
    'cone': ('cone',),
}
_SIZE_WORDS = {'small': ('small', 'little', 'tiny'), 'large': ('large', 'big')}
_RELATION_WORDS = {
    Relation.LEFT_OF: ('left of', 'to the left of', 'on the left of', 'on the left side of'),
    Relation.RIGHT_OF: ('right of', 'to the right of', 'on the right of', 'on the right side of'),
    Relation.IN_FRONT_OF: ('in front of',),
    Relation.BEHIND: ('behind', 'in back of'),
}
_OPPOSITE = {
    Relation.LEFT_OF: Relation.RIGHT_OF,
    Relation.RIGHT_OF: Relation.LEFT_OF,
    Relation.IN_FRONT_OF: Relation.BEHIND,
    Relation.BEHIND: Relation.IN_FRONT_OF,
}
_PARTICIPLES = ('sitting', 'located', 'placed', 'standing')
_HIDDEN_WORDS = (('partly', 'hidden'), ('partially', 'hidden'), ('partly', 'occluded'))
_ORDINAL_WORDS = {2: ('second', '2nd'), 3: ('third', '3rd'), 4: ('fourth', '4th')}
_SUPERLATIVE_TEMPLATES = {
    OrdinalOrder.LEFT: ('the leftmost {}', 'the left-most {}', 'the {} on the far left'),
    OrdinalOrder.RIGHT: ('the rightmost {}', 'the right-most {}', 'the {} on the far right'),
    OrdinalOrder.NEAREST: ('the nearest {}', 'the closest {}', 'the {} closest to the camera'),
    OrdinalOrder.FARTHEST: (
        'the farthest {}',
        'the furthest {}',
        'the {} farthest from the camera',
    ),
    OrdinalOrder.LARGEST: ('the largest {}', 'the biggest {}'),
    OrdinalOrder.SMALLEST: ('the smallest {}', 'the tiniest {}'),
}
_ORDINAL_SIDES = {
    OrdinalOrder.LEFT: ('from the left', 'counting from the left'),
    OrdinalOrder.RIGHT: ('from the right', 'counting from the right'),
    OrdinalOrder.NEAREST: ('from the front',),
    OrdinalOrder.FARTHEST: ('from the back',),
}


class BenchmarkError(EvalError):
    """The benchmark cannot be generated as asked (bad arguments, scenes exhausted)."""


def seed_split(seed: int) -> str | None:
    """'calibration' or 'test' for a benchmark seed of `SEED_SPLITS`, None for any other."""
    return next((name for name, seeds in SEED_SPLITS.items() if seed in seeds), None)


# -- structured descriptions ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Np:
    """A planned noun phrase: the target's categories to mention, and how it is singled out."""

    shape: str
    noun: str
    colour: str | None = None
    size: str | None = None
    relation: tuple[Relation, _Np] | None = None
    ordinal: Ordinal | None = None
    hidden: tuple[str, str] | None = None

    def to_ref(self) -> ObjectRef:
        words = [*(self.hidden or ()), self.size or '', self.colour or '', self.noun]
        relations: tuple[RelationConstraint, ...] = ()
        if self.relation is not None:
            relation, anchor = self.relation
            relations = (RelationConstraint(relation, (anchor.to_ref(),)),)
        return ObjectRef(
            phrase=' '.join(w for w in words if w),
            noun=self.noun,
            colour=self.colour,
            size=self.size,
            shape=self.shape,
            modifiers=self.hidden or (),
            relations=relations,
            ordinal=self.ordinal,
        )


def _np(truth: Any, fields: Sequence[str], rng: random.Random) -> _Np:
    return _Np(
        shape=truth.shape,
        noun=rng.choice(_NOUNS[truth.shape]),
        colour=truth.colour if 'colour' in fields else None,
        size=truth.size if 'size' in fields else None,
    )


def _pick(rng: random.Random, options: Sequence[str]) -> str:
    """One of `options`, drawing exactly one number whatever their count, so a positive and its
    changed copy, realised from the same generator state, get the same phrasing."""
    return options[int(rng.random() * len(options))]


def _attributes(np_: _Np, rng: random.Random, *, size: bool = True) -> str:
    size_word = _pick(rng, _SIZE_WORDS[np_.size]) if np_.size and size else ''
    return ' '.join(w for w in (size_word, np_.colour or '', np_.noun) if w)


def _phrase(np_: _Np, rng: random.Random, *, top: bool, style: list[str]) -> str:
    """Text for a planned noun phrase; `style` collects the names of the forms used."""
    if np_.ordinal is not None:
        return _ordinal_phrase(np_, rng, style)
    core = _attributes(np_, rng)
    if np_.hidden is not None:
        forms = {'hidden': f'the {" ".join(np_.hidden)} {core}'}
    else:
        forms = {'the': f'the {core}'}
        if top:
            forms['bare'] = core
        if np_.colour is not None and np_.relation is None:
            size_word = f'{_pick(rng, _SIZE_WORDS[np_.size])} ' if np_.size else ''
            forms['that_is_colour'] = f'the {size_word}{np_.noun} that is {np_.colour}'
    name = _pick(rng, sorted(forms))
    head = forms[name]
    style.append(name)
    if np_.relation is None:
        return head
    relation, anchor = np_.relation
    anchor_text = _phrase(anchor, rng, top=False, style=style)
    words = _pick(rng, _RELATION_WORDS[relation])
    # A nested anchor is always a relative clause ('the ball that is behind the can'), so the
    # inner relation attaches to the anchor, not to the target.
    links = {'that_is': 'that is', 'which_is': 'which is'}
    if top:
        links |= {'plain': '', 'participle': _pick(rng, _PARTICIPLES)}
    link_name = _pick(rng, sorted(links))
    style.append(f'rel_{link_name}')
    link = links[link_name]
    return ' '.join(w for w in (head, link, words, anchor_text) if w)


def _ordinal_phrase(np_: _Np, rng: random.Random, style: list[str]) -> str:
    assert np_.ordinal is not None
    order, index = np_.ordinal.order, np_.ordinal.index
    core = _attributes(np_, rng, size=order not in (OrdinalOrder.LARGEST, OrdinalOrder.SMALLEST))
    if index == 1:
        template = _pick(rng, _SUPERLATIVE_TEMPLATES[order])
        style.append('superlative:' + template.replace('{}', '_'))
        return template.format(core)
    side = _pick(rng, _ORDINAL_SIDES[order])
    style.append(f'ordinal:{side}')
    return f'the {_pick(rng, _ORDINAL_WORDS[index])} {core} {side}'


# -- sample construction --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    l1: str
    l2: str
    description: str
    target: str | None
    style: str
    source: str | None = None
    changed: str | None = None


def _resolve(np_: _Np, truths: Sequence[ObjectTruth]) -> TruthMatch:
    return resolve_ref(np_.to_ref(), truths)


def _denotes(np_: _Np, target: Any, truths: Sequence[Any]) -> bool:
    return bool(_resolve(np_, truths).unique == target.name)


def _ambiguous(np_: _Np, truths: Sequence[Any]) -> bool:
    """At least two objects certainly match: the phrase alone does not single one out."""
    return len(_resolve(np_, truths).certain) >= 2


def _targets(truths: Sequence[Any], rng: random.Random) -> list[Any]:
    chosen = [
        t
        for t in truths
        if t.box is not None
        and t.visible_fraction >= MIN_TARGET_VISIBLE
        and t.pixel_count >= MIN_TARGET_PIXELS
    ]
    rng.shuffle(chosen)
    return chosen


def _shuffled(items: Sequence[Any], rng: random.Random) -> list[Any]:
    out = list(items)
    rng.shuffle(out)
    return out


_FIELD_SETS: tuple[tuple[str, ...], ...] = ((), ('colour',), ('size',), ('colour', 'size'))


def _unique_np(target: Any, truths: Sequence[Any], rng: random.Random) -> _Np | None:
    """The shortest attribute description (noun, + colour, + size) that names only `target`."""
    for fields in _FIELD_SETS:
        candidate = _np(target, fields, rng)
        if _denotes(candidate, target, truths):
            return candidate
    return None


def _relational_np(
    target: Any,
    truths: Sequence[Any],
    rng: random.Random,
    anchor_np: Callable[[Any], _Np | None],
    *,
    relations: Sequence[Relation] = tuple(_RELATION_WORDS),
) -> _Np | None:
    """'<target> <relation> <anchor>', where the target's words alone are ambiguous."""
    anchors = [
        a
        for a in truths
        if a.name != target.name and a.box is not None and a.visible_fraction >= MIN_ANCHOR_VISIBLE
    ]
    for fields in _shuffled(((), ('colour',)), rng):
        base = _np(target, fields, rng)
        if not _ambiguous(base, truths):
            continue
        for anchor in _shuffled(anchors, rng):
            for relation in _shuffled(relations, rng):
                if relation_truth(relation, target, anchor) is not True:
                    continue
                anchor_phrase = anchor_np(anchor)
                if anchor_phrase is None:
                    break
                candidate = replace(base, relation=(relation, anchor_phrase))
                if _denotes(candidate, target, truths):
                    return candidate
    return None


def _discriminative(l2: str, truths: Sequence[Any], rng: random.Random) -> tuple[_Np, Any] | None:
    certain = [t for t in truths if t.box is not None and t.visible_fraction >= 0.3]
    for target in _targets(truths, rng):
        others = [o for o in certain if o.name != target.name]
        if l2 == 'colour':
            needed = any(o.shape == target.shape and o.colour != target.colour for o in others)
            fields: tuple[str, ...] = ('colour',)
        elif l2 == 'shape':
            needed = any(o.colour == target.colour and o.shape != target.shape for o in others)
            fields = ('colour',)
        else:
            needed = any(
                (o.colour, o.shape) == (target.colour, target.shape) and o.size != target.size
                for o in others
            )
            fields = ('colour', 'size')
        candidate = _np(target, fields, rng)
        if needed and _denotes(candidate, target, truths):
            return candidate, target
    return None


def _simple_relation(truths: Sequence[Any], rng: random.Random) -> tuple[_Np, Any] | None:
    for target in _targets(truths, rng):
        found = _relational_np(target, truths, rng, lambda a: _unique_np(a, truths, rng))
        if found is not None:
            return found, target
    return None


def _nested_relation(truths: Sequence[Any], rng: random.Random) -> tuple[_Np, Any] | None:
    def anchor_np(anchor: Any) -> _Np | None:
        return _relational_np(anchor, truths, rng, lambda a: _unique_np(a, truths, rng))

    for target in _targets(truths, rng)[:4]:  # the nested search is the costly one
        found = _relational_np(target, truths, rng, anchor_np)
        if found is not None:
            return found, target
    return None


def _ranked(
    truths: Sequence[Any], rng: random.Random, orders: Sequence[OrdinalOrder], *, first: bool
) -> tuple[_Np, Any] | None:
    """'the leftmost cube' (first=True) or 'the second cube from the left' (first=False);
    'first' of a row is left to the superlatives."""
    for target in _targets(truths, rng):
        for fields in _shuffled(((), ('colour',)), rng):
            base = _np(target, fields, rng)
            group = resolve_ref(base.to_ref(), truths)
            if len(group.certain) < (2 if first else 3) or group.uncertain:
                continue
            for order in _shuffled(orders, rng):
                for index in (1,) if first else tuple(_ORDINAL_WORDS):
                    candidate = replace(base, ordinal=Ordinal(index, order))
                    if _denotes(candidate, target, truths):
                        return candidate, target
    return None


def _in_image(truth: ObjectTruth, width: int, height: int) -> bool:
    box = truth.full_box
    return box.x1 >= 0 and box.y1 >= 0 and box.x2 <= width and box.y2 <= height


def _limited(
    l2: str, truths: Sequence[Any], rng: random.Random, width: int, height: int
) -> tuple[_Np, Any] | None:
    if l2 == 'small':
        limit = SMALL_AREA_FRACTION * width * height
        for target in _targets(truths, rng):
            if target.box.area > limit:
                continue
            found = _unique_np(target, truths, rng) or _relational_np(
                target, truths, rng, lambda a: _unique_np(a, truths, rng)
            )
            if found is not None:
                return found, target
        return None
    low, high = OCCLUDED_RANGE
    hidden = [
        t
        for t in truths
        if t.box is not None
        and low <= t.visible_fraction <= high
        and t.pixel_count >= 40
        and _in_image(t, width, height)
    ]
    for target in _shuffled(hidden, rng):
        base = _unique_np(target, truths, rng)
        occluders = [
            o
            for o in truths
            if o.box is not None
            and o.name != target.name
            and o.visible_fraction >= MIN_ANCHOR_VISIBLE
            and relation_truth(Relation.BEHIND, target, o) is True
            and o.box.intersection_over_self(target.full_box) > 0.0
        ]
        variants: list[_Np] = []
        for occluder in occluders:
            anchor = _unique_np(occluder, truths, rng)
            if anchor is None:
                continue
            with_anchor = base or _np(target, ('colour',), rng)
            variants.append(replace(with_anchor, relation=(Relation.BEHIND, anchor)))
            variants.append(
                replace(with_anchor, relation=(Relation.BEHIND, anchor),
                        hidden=rng.choice(_HIDDEN_WORDS))
            )  # fmt: skip
        if base is not None:
            variants += [base, replace(base, hidden=rng.choice(_HIDDEN_WORDS))]
        for candidate in _shuffled(variants, rng):
            if _denotes(candidate, target, truths):
                return candidate, target
    return None


def _rejection(l2: str, truths: Sequence[Any], rng: random.Random) -> tuple[_Np, _Np, str] | None:
    """(positive, changed, what changed): one detail of a valid positive changed so that the
    description denotes nothing."""
    if l2 == 'wrong_relation':
        for _ in range(3):
            found = _simple_relation(truths, rng)
            if found is None:
                return None
            positive = found[0]
            assert positive.relation is not None
            relation, anchor = positive.relation
            changed = replace(positive, relation=(_OPPOSITE[relation], anchor))
            if _resolve(changed, truths).empty:
                return positive, changed, f'{relation.value} -> {_OPPOSITE[relation].value}'
        return None
    for target in _targets(truths, rng):
        fields = {'wrong_colour': ('colour',), 'wrong_size': ('colour', 'size'),
                  'wrong_shape': ('colour',)}[l2]  # fmt: skip
        positive = _np(target, fields, rng)
        if not _denotes(positive, target, truths):
            continue
        changes: list[tuple[_Np, str]] = []
        if l2 == 'wrong_colour':
            changes = [(replace(positive, colour=c), f'{target.colour} -> {c}')
                       for c in COLOURS if c != target.colour]  # fmt: skip
        elif l2 == 'wrong_size':
            other = next(s for s in SIZES if s != target.size)
            changes = [(replace(positive, size=other), f'{target.size} -> {other}')]
        else:
            changes = [
                (replace(positive, shape=s, noun=rng.choice(_NOUNS[s])), f'{target.shape} -> {s}')
                for s in SHAPES
                if s != target.shape
            ]
        # Hard negatives first: a colour or shape that is in the scene, on another object.
        present = {o.colour for o in truths if o.box is not None}
        present |= {o.shape for o in truths if o.box is not None}
        ordered = _shuffled(changes, rng)
        ordered.sort(key=lambda change: change[1].split(' -> ')[1] not in present)
        for changed, what in ordered:
            if _resolve(changed, truths).empty:
                return positive, changed, what
    return None


def _realise(np_: _Np, rng: random.Random) -> tuple[str, str]:
    style: list[str] = []
    text = _phrase(np_, rng, top=True, style=style)
    return text, '+'.join(style)


@dataclass(frozen=True)
class SceneSamples:
    """Every sample one scene can offer (at most one per subtask), its image and truth."""

    index: int
    scene_seed: int
    png: bytes
    scene: dict[str, Any]
    samples: tuple[_Sample, ...]
    boxes: dict[str, list[float]]


def scene_samples(
    index: int, scene_seed: int, width: int = 640, height: int = 480, preset: str = 'fixed'
) -> SceneSamples:
    """Render one benchmark scene and build one checked sample per subtask it can support."""
    rng = random.Random(f'grounding_agent.eval.benchmark/{scene_seed}')
    spec = generate_scene(
        scene_seed,
        n_objects=_N_OBJECTS,
        occluder=rng.random() < _OCCLUDER_SHARE,
        width=width,
        height=height,
        preset=preset,
    )
    render = render_scene(spec)
    truths = render.objects
    samples: list[_Sample] = []

    def add(l1: str, l2: str, found: tuple[_Np, Any] | None) -> None:
        if found is not None:
            text, style = _realise(found[0], rng)
            samples.append(_Sample(l1, l2, text, found[1].name, style))

    for l2 in SUBTASKS['Discriminative']:
        add('Discriminative', l2, _discriminative(l2, truths, rng))
    add('Spatial', 'relation', _simple_relation(truths, rng))
    add('Spatial', 'nested_relation', _nested_relation(truths, rng))
    orders_lr = (OrdinalOrder.LEFT, OrdinalOrder.RIGHT, OrdinalOrder.LEFT, OrdinalOrder.RIGHT,
                 OrdinalOrder.NEAREST, OrdinalOrder.FARTHEST)  # fmt: skip
    add('Spatial', 'ordinal', _ranked(truths, rng, orders_lr, first=False))
    add('Spatial', 'superlative', _ranked(truths, rng, tuple(_SUPERLATIVE_TEMPLATES), first=True))
    for l2 in SUBTASKS['Limited']:
        add('Limited', l2, _limited(l2, truths, rng, width, height))
    for l2 in SUBTASKS['Rejection']:
        found = _rejection(l2, truths, rng)
        if found is None:
            continue
        positive, changed, what = found
        # The same phrasing for both, so exactly the one detail differs in the text.
        state = rng.getstate()
        source, _ = _realise(positive, rng)
        rng.setstate(state)
        text, style = _realise(changed, rng)
        samples.append(_Sample('Rejection', l2, text, None, style, source=source, changed=what))

    ok, encoded = cv2.imencode('.png', render.rgb[:, :, ::-1])
    if not ok:
        raise BenchmarkError(f'could not encode the image of scene {index}')
    return SceneSamples(
        index=index,
        scene_seed=scene_seed,
        png=encoded.tobytes(),
        scene={
            'spec': spec.to_dict(),
            'objects': [o.to_dict() for o in truths],
        },
        samples=tuple(samples),
        boxes={o.name: o.box.to_list() for o in truths if o.box is not None},
    )


def _scene_job(args: tuple[int, int, int, int, str]) -> SceneSamples:
    return scene_samples(*args)


def _quotas(n_samples: int) -> dict[str, int]:
    share, extra = divmod(n_samples, len(SUBTASKS))
    return {l1: share + (1 if i < extra else 0) for i, l1 in enumerate(SUBTASKS)}


def _scene_results(
    seed: int, width: int, height: int, workers: int, max_scenes: int, preset: str
) -> Iterator[SceneSamples]:
    """Scenes in index order, rendered by `workers` processes; stops when the caller stops."""
    jobs = ((i, seed * SCENE_SEED_STRIDE + i, width, height, preset) for i in range(max_scenes))
    if workers <= 1:
        yield from map(_scene_job, jobs)
        return
    import multiprocessing

    batch = workers * 4
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn')) as pool:
        pending = list(range(max_scenes))
        while pending:
            chunk, pending = pending[:batch], pending[batch:]
            args = [(i, seed * SCENE_SEED_STRIDE + i, width, height, preset) for i in chunk]
            yield from pool.map(_scene_job, args)


def generate_benchmark(
    out_dir: Path,
    *,
    n_samples: int = 1000,
    seed: int = 0,
    workers: int = 1,
    width: int = 640,
    height: int = 480,
    progress: Callable[[int], None] | None = None,
    preset: str = 'fixed',
) -> Path:
    """Write the benchmark into `out_dir` and return the path of `annotations.jsonl`.

    Categories get n_samples / 4 samples each; within a category every scene offers at most
    one sample and the least-filled subtask it can support is taken, so subtasks stay roughly
    balanced. The same seed gives the same records and the same image bytes, whatever
    `workers`. `progress` is called with the number of samples each scene added. `preset`
    is the scenes' look (`grounding_agent.sim.look.PRESETS`); see `SEED_SPLITS` for which
    seeds calibrate and which test.
    """
    if not 4 <= n_samples <= SCENE_SEED_STRIDE:
        raise BenchmarkError(f'n_samples must be within 4..{SCENE_SEED_STRIDE}, got {n_samples}')
    if seed < 0 or workers < 1:
        raise BenchmarkError(f'seed must be >= 0 and workers >= 1, got {seed}, {workers}')
    if preset not in PRESETS:
        raise BenchmarkError(f'unknown preset {preset!r}; expected one of {PRESETS}')
    out_dir = Path(out_dir)
    images = out_dir / 'images'
    images.mkdir(parents=True, exist_ok=True)
    quotas = _quotas(n_samples)
    counts: dict[str, dict[str, int]] = {l1: dict.fromkeys(l2s, 0) for l1, l2s in SUBTASKS.items()}
    records: list[dict[str, Any]] = []
    scene_lines: list[str] = []
    styles: set[str] = set()
    max_scenes = min(SCENE_SEED_STRIDE, 10 * n_samples)
    used = 0
    for result in _scene_results(seed, width, height, workers, max_scenes, preset):
        used = result.index + 1
        added = _take(result, quotas, counts, records, width, height)
        if added:
            name = f'{result.index:05d}.png'
            (images / name).write_bytes(result.png)
            scene_lines.append(
                json.dumps(
                    {'image': f'images/{name}', 'scene_seed': result.scene_seed, **result.scene},
                    sort_keys=True,
                )
            )
            styles.update(r['phrasing'] for r in records[-added:])
            if progress is not None:
                progress(added)
        if all(sum(counts[l1].values()) >= quotas[l1] for l1 in SUBTASKS):
            break
    else:
        raise BenchmarkError(f'{max_scenes} scenes did not fill the categories: {counts}')
    annotations = out_dir / 'annotations.jsonl'
    annotations.write_text(''.join(json.dumps(r, sort_keys=True) + '\n' for r in records))
    (out_dir / 'scenes.jsonl').write_text(''.join(line + '\n' for line in scene_lines))
    meta = {
        'generator': GENERATOR_VERSION,
        'seed': seed,
        'split': seed_split(seed),
        'preset': preset,
        'n_samples': len(records),
        'scenes_rendered': used,
        'images': len(scene_lines),
        'width': width,
        'height': height,
        'counts': counts,
        'phrasings': len(styles),
        'thresholds': {
            'min_target_visible': MIN_TARGET_VISIBLE,
            'min_target_pixels': MIN_TARGET_PIXELS,
            'min_anchor_visible': MIN_ANCHOR_VISIBLE,
            'occluded_range': list(OCCLUDED_RANGE),
            'small_area_fraction': SMALL_AREA_FRACTION,
        },
    }
    (out_dir / 'meta.json').write_text(json.dumps(meta, indent=2, sort_keys=True) + '\n')
    return annotations


def _take(
    result: SceneSamples,
    quotas: dict[str, int],
    counts: dict[str, dict[str, int]],
    records: list[dict[str, Any]],
    width: int,
    height: int,
) -> int:
    """Add at most one sample per category from one scene; returns how many were added."""
    added = 0
    for l1, l2s in SUBTASKS.items():
        if sum(counts[l1].values()) >= quotas[l1]:
            continue
        offered = {s.l2: s for s in result.samples if s.l1 == l1}
        if not offered:
            continue
        # The least-filled subtask first; ties in the table's order.
        l2 = min(offered, key=lambda name: (counts[l1][name], l2s.index(name)))
        sample = offered[l2]
        counts[l1][l2] += 1
        record: dict[str, Any] = {
            'id': f'sim-{result.index:05d}-{l1.lower()}',
            'description': sample.description,
            'image': f'images/{result.index:05d}.png',
            'bbox': None if sample.target is None else result.boxes[sample.target],
            'subtask_l1': l1,
            'subtask_l2': l2,
            'width': width,
            'height': height,
            'target': sample.target,
            'phrasing': sample.style,
        }
        if sample.source is not None:
            record['source_description'] = sample.source
            record['changed'] = sample.changed
        records.append(record)
        added += 1
    return added


def load_scene_truths(out_dir: Path) -> dict[str, tuple[Any, ...]]:
    """image path (as in the records) -> the ObjectTruths of that scene, from `scenes.jsonl`."""
    truths: dict[str, tuple[Any, ...]] = {}
    path = Path(out_dir) / 'scenes.jsonl'
    for line in path.read_text().splitlines():
        if line.strip():
            scene = json.loads(line)
            truths[scene['image']] = tuple(ObjectTruth.from_dict(o) for o in scene['objects'])
    return truths

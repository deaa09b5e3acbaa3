"""The words the agent understands by itself: verbs, colours, sizes, shapes, relations, ordinals.

The command parser, the `color_shape` backend and the speech grammar are all generated from these
tables, so they cannot drift apart. Words not listed here are not errors: they stay in the phrase
handed to the model.
"""

from __future__ import annotations

from types import MappingProxyType

from grounding_agent.core.types import OrdinalOrder, Relation

__all__ = [
    'COLOURS',
    'COLOUR_SYNONYMS',
    'NUMBER_WORDS',
    'ORDINAL_WORDS',
    'RELATION_PHRASES',
    'SHAPE_NOUNS',
    'SIZES',
    'SIZE_SYNONYMS',
    'SUPERLATIVES',
    'VERB_PHRASES',
]

# Basic colour terms (Berlin & Kay's eleven); the color_shape backend names exactly these.
COLOURS: tuple[str, ...] = (
    'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'black', 'white', 'gray',
)
COLOUR_SYNONYMS = MappingProxyType({'grey': 'gray', 'violet': 'purple', 'cyan': 'blue'})

SIZES: tuple[str, ...] = ('small', 'large')
SIZE_SYNONYMS = MappingProxyType(
    {'tiny': 'small', 'little': 'small', 'big': 'large', 'huge': 'large', 'small': 'small',
     'large': 'large'}
)

# Shape nouns the color_shape backend can recognise, mapped to its coarse shape classes.
SHAPE_NOUNS = MappingProxyType(
    {
        'cube': 'cube', 'box': 'cube', 'block': 'cube', 'crate': 'cube',
        'sphere': 'sphere', 'ball': 'sphere', 'orb': 'sphere',
        'cylinder': 'cylinder', 'can': 'cylinder', 'cup': 'cylinder', 'mug': 'cylinder',
        'bottle': 'cylinder', 'tin': 'cylinder', 'jar': 'cylinder',
        'cone': 'cone', 'pyramid': 'cone',
    }
)

# Verb phrase -> normalised action. Multi-word phrases are matched before single words.
VERB_PHRASES = MappingProxyType(
    {
        'find': 'find', 'locate': 'locate', 'detect': 'find', 'show': 'find', 'show me': 'find',
        'get': 'grab', 'track': 'track', 'follow': 'track', 'keep track of': 'track',
        'point to': 'point_to', 'point at': 'point_to', 'where is': 'where', "where's": 'where',
        'where are': 'where', 'pick up': 'pick_up', 'pick': 'pick_up', 'grab': 'grab',
        'grasp': 'grab', 'take': 'grab', 'fetch': 'grab', 'bring me': 'grab', 'go to': 'go_to',
        'move to': 'go_to', 'drive to': 'go_to', 'navigate to': 'go_to', 'look at': 'look_at',
        'face': 'look_at',
    }
)

# Relation phrase -> relation. Longer phrases win ('on top of' before 'on').
RELATION_PHRASES = MappingProxyType(
    {
        'left of': Relation.LEFT_OF, 'to the left of': Relation.LEFT_OF,
        'on the left of': Relation.LEFT_OF,
        'right of': Relation.RIGHT_OF, 'to the right of': Relation.RIGHT_OF,
        'on the right of': Relation.RIGHT_OF,
        'above': Relation.ABOVE, 'over': Relation.ABOVE,
        'on top of': Relation.ON, 'on': Relation.ON, 'onto': Relation.ON, 'atop': Relation.ON,
        'below': Relation.BELOW, 'beneath': Relation.BELOW,
        'under': Relation.UNDER, 'underneath': Relation.UNDER,
        'in front of': Relation.IN_FRONT_OF, 'before': Relation.IN_FRONT_OF,
        'behind': Relation.BEHIND, 'in back of': Relation.BEHIND,
        'next to': Relation.NEXT_TO, 'beside': Relation.NEXT_TO, 'by': Relation.NEXT_TO,
        'alongside': Relation.NEXT_TO,
        'near': Relation.NEAR, 'close to': Relation.NEAR, 'near to': Relation.NEAR,
        'between': Relation.BETWEEN,
        'closest to': Relation.CLOSEST_TO, 'nearest to': Relation.CLOSEST_TO,
        'nearest': Relation.CLOSEST_TO,
        'farthest from': Relation.FARTHEST_FROM, 'furthest from': Relation.FARTHEST_FROM,
        'inside': Relation.INSIDE, 'in': Relation.INSIDE, 'within': Relation.INSIDE,
        'inside of': Relation.INSIDE,
    }
)

ORDINAL_WORDS = MappingProxyType(
    {
        'first': 1, 'second': 2, 'third': 3, 'fourth': 4, 'fifth': 5, 'sixth': 6,
        '1st': 1, '2nd': 2, '3rd': 3, '4th': 4, '5th': 5, '6th': 6, 'last': -1,
    }
)

# Superlative adjective -> ordering (the candidate ranked first in that order).
SUPERLATIVES = MappingProxyType(
    {
        'leftmost': OrdinalOrder.LEFT, 'rightmost': OrdinalOrder.RIGHT,
        'topmost': OrdinalOrder.TOP, 'uppermost': OrdinalOrder.TOP,
        'bottommost': OrdinalOrder.BOTTOM, 'lowest': OrdinalOrder.BOTTOM,
        'highest': OrdinalOrder.TOP,
        'nearest': OrdinalOrder.NEAREST, 'closest': OrdinalOrder.NEAREST,
        'farthest': OrdinalOrder.FARTHEST, 'furthest': OrdinalOrder.FARTHEST,
        'largest': OrdinalOrder.LARGEST, 'biggest': OrdinalOrder.LARGEST,
        'smallest': OrdinalOrder.SMALLEST, 'tiniest': OrdinalOrder.SMALLEST,
    }
)

NUMBER_WORDS = MappingProxyType(
    {'zero': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7,
     'eight': 8, 'nine': 9, 'ten': 10}
)

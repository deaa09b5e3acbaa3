"""The words the agent understands by itself: verbs, colours, sizes, shapes, relations, ordinals.

The command parser, the `color_shape` backend, the resolver's reasons, the simulator's ground
truth and the speech grammar all take their words from here (and singular / plural from
`singular_noun` / `plural_noun`), so they cannot drift apart. Words not listed here are not
errors: they stay in the phrase handed to the model. Every table maps a lower-case phrase (one or
more words separated by single spaces) to its meaning; the parser matches longer phrases before
shorter ones.
"""

from __future__ import annotations

from functools import lru_cache
from types import MappingProxyType

import inflect

from grounding_agent.core.types import OrdinalOrder, QueryKind, Relation

__all__ = [
    'ACTION_VERB_PHRASES',
    'ANY_OBJECT_NOUNS',
    'ATTRIBUTE_PHRASES',
    'CAMERA_REFERENCES',
    'CARRYING_ACTIONS',
    'CLOTHING_NOUNS',
    'COLOURS',
    'COLOUR_NAMES',
    'COLOUR_NOUNS',
    'COLOUR_SYNONYMS',
    'COMPARATIVES',
    'COMPOUND_NOUNS',
    'CONTRACTIONS',
    'COPULAS',
    'DESCRIPTIVE_WORDS',
    'DETERMINERS',
    'DIRECTION_PHRASES',
    'FILLER_PHRASES',
    'GENERIC_NOUNS',
    'GENERIC_PHRASE',
    'GOAL_ACTIONS',
    'IRREGULAR_PLURALS',
    'LEADING_FILLERS',
    'MOTION_ACTIONS',
    'NEGATIONS',
    'NOT_NOUNS',
    'NUMBER_WORDS',
    'ORDINAL_WORDS',
    'PARTICIPLES',
    'PERSON_WORDS',
    'PLACING_ACTIONS',
    'PLURAL_DETERMINERS',
    'POSITION_PHRASES',
    'PRONOUNS',
    'QUESTION_PHRASES',
    'RELATION_PHRASES',
    'RELATIVE_PRONOUNS',
    'REWRITES',
    'SHAPE_NOUNS',
    'SINGULAR_NOUNS_IN_S',
    'SIZES',
    'SIZE_SYNONYMS',
    'SPOKEN_ACTION_VERBS',
    'SPOKEN_DIRECTIONS',
    'SUPERLATIVES',
    'VERB_PHRASES',
    'counted',
    'is_plural',
    'plural_noun',
    'singular_noun',
    'vocabulary_words',
]

# The tables below are kept one topic per line on purpose: they are read far more than edited.
# fmt: off

# Basic colour terms (Berlin & Kay's eleven); the color_shape backend names exactly these.
COLOURS: tuple[str, ...] = (
    'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'black', 'white',
    'gray',
)
COLOUR_SYNONYMS = MappingProxyType({'grey': 'gray', 'violet': 'purple', 'cyan': 'blue'})
# More colour names, mapped onto the nearest of the eleven (what a backend that names only the
# basic terms can check); the word as said stays in the query's `colours`.
COLOUR_NAMES = MappingProxyType(
    {
        **COLOUR_SYNONYMS, 'silver': 'gray', 'silvery': 'gray',
        'maroon': 'red', 'crimson': 'red', 'scarlet': 'red', 'burgundy': 'red', 'ruby': 'red',
        'cherry': 'red', 'tan': 'brown', 'beige': 'brown', 'khaki': 'brown', 'chocolate': 'brown',
        'bronze': 'brown', 'navy': 'blue', 'navy blue': 'blue', 'turquoise': 'blue',
        'teal': 'blue', 'aqua': 'blue', 'azure': 'blue', 'indigo': 'blue', 'sky blue': 'blue',
        'light blue': 'blue', 'dark blue': 'blue', 'royal blue': 'blue', 'olive': 'green',
        'lime': 'green', 'mint': 'green', 'emerald': 'green', 'light green': 'green',
        'dark green': 'green', 'gold': 'yellow', 'golden': 'yellow', 'blond': 'yellow',
        'blonde': 'yellow', 'lemon': 'yellow', 'magenta': 'pink', 'fuchsia': 'pink',
        'salmon': 'pink', 'rose': 'pink', 'lavender': 'purple', 'lilac': 'purple',
        'plum': 'purple', 'mauve': 'purple', 'peach': 'orange', 'coral': 'orange',
        'amber': 'orange', 'rust': 'orange', 'cream': 'white', 'ivory': 'white',
        'off-white': 'white', 'charcoal': 'gray', 'dark gray': 'gray', 'light gray': 'gray',
        'dark grey': 'gray', 'light grey': 'gray',
    }
)
# Colour words that also name an object: 'pick up the orange' means the fruit.
COLOUR_NOUNS: frozenset[str] = frozenset({
    'orange', 'lime', 'lemon', 'cherry', 'plum', 'peach', 'rose', 'gold', 'silver', 'cream',
    'chocolate', 'mint', 'olive', 'coral', 'salmon', 'ruby', 'emerald', 'amber', 'rust',
    'charcoal', 'bronze', 'ivory',
})

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
        # Paraphrases operators type.
        'find me': 'find', 'look for': 'find', 'search for': 'find', 'identify': 'find',
        'highlight': 'find', 'where': 'where', 'where can i find': 'where',
        'point out': 'point_to', 'indicate': 'point_to',
        'pick out': 'pick_up', 'give me': 'grab', 'hand me': 'grab', 'pass me': 'grab',
        'bring': 'bring', 'get me': 'grab',
        'keep tracking': 'track', 'start tracking': 'track', 'watch': 'track',
        'keep an eye on': 'track',
        'head to': 'go_to', 'walk to': 'go_to', 'approach': 'go_to', 'go over to': 'go_to',
        'turn to': 'look_at', 'look towards': 'look_at', 'look toward': 'look_at',
    }
)
# Manipulation verbs: the action is the verb itself ('push the block to the left'). Kept apart
# from VERB_PHRASES so that the speech grammar can take them in step with its tests.
ACTION_VERB_PHRASES = MappingProxyType(
    {
        'push': 'push', 'slide': 'slide', 'lift': 'lift', 'lift up': 'lift', 'raise': 'lift',
        'rotate': 'rotate', 'turn': 'rotate', 'spin': 'rotate', 'twist': 'rotate',
        'open': 'open', 'close': 'close', 'shut': 'close', 'put': 'put', 'put down': 'put',
        'place': 'put', 'set': 'put', 'drop': 'put', 'move': 'move', 'shift': 'move',
        'nudge': 'push', 'pull': 'pull', 'drag': 'pull', 'stack': 'stack', 'knock over': 'push',
        'hold': 'grab', 'carry': 'carry', 'throw': 'throw', 'toss': 'throw', 'roll': 'roll',
        'press': 'press', 'touch': 'touch', 'poke': 'touch', 'tap': 'touch', 'insert': 'put',
        'pour': 'pour', 'flip': 'rotate', 'wipe': 'wipe', 'clean': 'wipe', 'give': 'grab',
        'pick up and place': 'put', 'remove': 'remove', 'take out': 'remove',
        'take off': 'remove', 'store': 'put', 'hang': 'put', 'sweep': 'push',
        'catch': 'grab', 'turn on': 'turn_on', 'switch on': 'turn_on', 'activate': 'turn_on',
        'turn off': 'turn_off', 'switch off': 'turn_off', 'deactivate': 'turn_off',
        'toggle': 'toggle', 'search': 'find', 'look': 'find',
        'park': 'go_to', 'go towards': 'go_to', 'go toward': 'go_to', 'go near': 'go_to',
        'pull over': 'go_to', 'pull up': 'go_to', 'drop me off': 'go_to', 'let me out': 'go_to',
        'drive': 'go_to', 'overtake': 'go_to', 'stop': 'go_to',
    }
)
# The manipulation verbs and directions the speech grammar offers (a few, so that recognition
# stays accurate): 'push the red block to the left', 'put the cube in the bowl'.
SPOKEN_ACTION_VERBS: tuple[str, ...] = (
    'push', 'slide', 'lift', 'rotate', 'turn', 'put', 'place', 'move', 'pull', 'open', 'close',
)
SPOKEN_DIRECTIONS: tuple[str, ...] = ('to the left', 'to the right', 'left', 'right', 'up', 'down')
# Actions that move the object somewhere: their last relation ('put the block in the drawer')
# names the destination, not which object.
PLACING_ACTIONS: frozenset[str] = frozenset({
    'put', 'move', 'push', 'slide', 'pull', 'stack', 'throw', 'roll', 'pour', 'bring',
})
# Actions whose object may be a place only named by a relation: 'park in front of the black
# car' is about the car, 'go to the counter at your left' about the counter.
GOAL_ACTIONS: frozenset[str] = frozenset({'go_to'})
# Actions that take a destination only with 'to', 'into', 'onto': 'take the cup to the sink'
# ('pick up the cup on the table' says which cup).
CARRYING_ACTIONS: frozenset[str] = frozenset({'grab', 'pick_up', 'lift', 'carry', 'remove'})
# Actions that can take a direction: 'push the block to the left', 'slide left the block'.
MOTION_ACTIONS: frozenset[str] = frozenset({
    'push', 'slide', 'move', 'pull', 'rotate', 'roll', 'lift', 'throw', 'put',
})
# Direction phrase -> direction, read only after a motion action (elsewhere 'left' is the
# leftmost and 'back' a noun). Single words or phrases the other tables already join.
DIRECTION_PHRASES = MappingProxyType(
    {
        'left': 'left', 'to the left': 'left', 'leftward': 'left', 'leftwards': 'left',
        'right': 'right', 'to the right': 'right', 'rightward': 'right', 'rightwards': 'right',
        'up': 'up', 'upward': 'up', 'upwards': 'up', 'down': 'down', 'downward': 'down',
        'downwards': 'down', 'forward': 'forward', 'forwards': 'forward', 'ahead': 'forward',
        'backward': 'backward', 'backwards': 'backward', 'back': 'backward', 'away': 'away',
        'clockwise': 'clockwise', 'counterclockwise': 'counterclockwise',
        'counter-clockwise': 'counterclockwise', 'anticlockwise': 'counterclockwise',
        'anti-clockwise': 'counterclockwise',
    }
)
# Phrases read as other words before anything else: sides of the operator or the robot said as
# a place ('the pc on your left' is left of you), and 'outside the window' (not in it).
REWRITES = MappingProxyType(
    {
        'outside of the': 'not inside the', 'outside the': 'not inside the',
        **{
            f'{prep} {person} {side}': f'{side} of {"me" if person == "my" else "you"}'
            for prep in ('on', 'at', 'to')
            for person in ('my', 'your')
            for side in ('left', 'right')
        },
    }
)
# The operator and the robot as anchors: 'the person behind you', 'the cup in front of me'.
PERSON_WORDS: frozenset[str] = frozenset({'me', 'you', 'us'})
# Names of two words whose last word alone names something else ('remote control', not a
# 'control'): the parser keeps them together as the noun.
COMPOUND_NOUNS: tuple[str, ...] = (
    'remote control', 'teddy bear', 'hot dog', 'baseball bat', 'traffic light', 'trash can',
    'garbage can', 'washing machine', 'light switch', 'fire hydrant', 'stop sign',
    'parking meter', 'wine glass', 'cell phone',
)
# Words that stand for a noun said before: 'pick it up', 'the bowl with salad in it'.
PRONOUNS: frozenset[str] = frozenset({'it', 'them', 'itself', 'themselves', 'this', 'that'})

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
        'at the left of': Relation.LEFT_OF, 'at the right of': Relation.RIGHT_OF,
        'ahead of': Relation.IN_FRONT_OF,
        # 'the block from the drawer' is where the object is now.
        'from': Relation.NEAR, 'out of': Relation.INSIDE,
        'next to': Relation.NEXT_TO, 'beside': Relation.NEXT_TO, 'by': Relation.NEXT_TO,
        'alongside': Relation.NEXT_TO,
        'near': Relation.NEAR, 'close to': Relation.NEAR, 'near to': Relation.NEAR,
        'between': Relation.BETWEEN,
        'closest to': Relation.CLOSEST_TO, 'nearest to': Relation.CLOSEST_TO,
        'nearest': Relation.CLOSEST_TO,
        'farthest from': Relation.FARTHEST_FROM, 'furthest from': Relation.FARTHEST_FROM,
        'inside': Relation.INSIDE, 'in': Relation.INSIDE, 'within': Relation.INSIDE,
        'inside of': Relation.INSIDE,
        # Paraphrases.
        'on the left side of': Relation.LEFT_OF, 'to the left side of': Relation.LEFT_OF,
        'on the right side of': Relation.RIGHT_OF, 'to the right side of': Relation.RIGHT_OF,
        'directly above': Relation.ABOVE, 'upon': Relation.ON,
        'directly below': Relation.BELOW, 'right behind': Relation.BEHIND,
        'directly behind': Relation.BEHIND, 'right in front of': Relation.IN_FRONT_OF,
        'directly in front of': Relation.IN_FRONT_OF, 'right next to': Relation.NEXT_TO,
        'adjacent to': Relation.NEXT_TO,
        'closer to': Relation.CLOSEST_TO, 'nearer to': Relation.CLOSEST_TO,
        'farther from': Relation.FARTHEST_FROM, 'further from': Relation.FARTHEST_FROM,
        'farthest away from': Relation.FARTHEST_FROM, 'furthest away from': Relation.FARTHEST_FROM,
        'in between': Relation.BETWEEN,
    }
)

ORDINAL_WORDS = MappingProxyType(
    {
        'first': 1, 'second': 2, 'third': 3, 'fourth': 4, 'fifth': 5, 'sixth': 6,
        '1st': 1, '2nd': 2, '3rd': 3, '4th': 4, '5th': 5, '6th': 6, 'last': -1,
        'seventh': 7, 'eighth': 8, 'ninth': 9, 'tenth': 10,
        'second to last': -2, 'second last': -2, 'next to last': -2, 'last but one': -2,
        'third to last': -3, 'third last': -3,
    }
)

# Superlative adjective -> ordering (the candidate ranked first in that order). 'left', 'top' and
# friends act the same way in front of a noun: 'the left cup' is the leftmost one.
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
        'left-most': OrdinalOrder.LEFT, 'right-most': OrdinalOrder.RIGHT,
        'left': OrdinalOrder.LEFT, 'right': OrdinalOrder.RIGHT, 'top': OrdinalOrder.TOP,
        'bottom': OrdinalOrder.BOTTOM, 'upper': OrdinalOrder.TOP,
    }
)

# Comparatives: 'which cup is closer?', 'the bigger box'. They order candidates like superlatives.
COMPARATIVES = MappingProxyType(
    {
        'closer': OrdinalOrder.NEAREST, 'nearer': OrdinalOrder.NEAREST,
        'farther': OrdinalOrder.FARTHEST, 'further': OrdinalOrder.FARTHEST,
        'bigger': OrdinalOrder.LARGEST, 'larger': OrdinalOrder.LARGEST,
        'smaller': OrdinalOrder.SMALLEST, 'higher': OrdinalOrder.TOP, 'lower': OrdinalOrder.BOTTOM,
        'more to the left': OrdinalOrder.LEFT, 'more to the right': OrdinalOrder.RIGHT,
        'further left': OrdinalOrder.LEFT, 'further right': OrdinalOrder.RIGHT,
    }
)

NUMBER_WORDS = MappingProxyType(
    {'zero': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7,
     'eight': 8, 'nine': 9, 'ten': 10, 'eleven': 11, 'twelve': 12, 'a couple of': 2, 'both': 2}
)

# Where a candidate sits in the row, after the noun: (order, counted_from). 'the second cup from
# the left' counts from that side (so 'the last cup from the left' is the rightmost one); 'the last
# cup on the right' names the end of the row on that side (the rightmost one).
POSITION_PHRASES = MappingProxyType(
    {
        'from the left': (OrdinalOrder.LEFT, True), 'from left': (OrdinalOrder.LEFT, True),
        'counting from the left': (OrdinalOrder.LEFT, True),
        'from the right': (OrdinalOrder.RIGHT, True), 'from right': (OrdinalOrder.RIGHT, True),
        'counting from the right': (OrdinalOrder.RIGHT, True),
        'from the top': (OrdinalOrder.TOP, True), 'from the bottom': (OrdinalOrder.BOTTOM, True),
        'from the front': (OrdinalOrder.NEAREST, True),
        'from the back': (OrdinalOrder.FARTHEST, True),
        'on the left': (OrdinalOrder.LEFT, False), 'to the left': (OrdinalOrder.LEFT, False),
        'at the left': (OrdinalOrder.LEFT, False), 'on the far left': (OrdinalOrder.LEFT, False),
        'on the left side': (OrdinalOrder.LEFT, False),
        'on the left-hand side': (OrdinalOrder.LEFT, False),
        'on the left hand side': (OrdinalOrder.LEFT, False),
        'on the right hand side': (OrdinalOrder.RIGHT, False),
        'on the right': (OrdinalOrder.RIGHT, False), 'to the right': (OrdinalOrder.RIGHT, False),
        'at the right': (OrdinalOrder.RIGHT, False),
        'on the far right': (OrdinalOrder.RIGHT, False),
        'on the right side': (OrdinalOrder.RIGHT, False),
        'on the right-hand side': (OrdinalOrder.RIGHT, False),
        'at the top': (OrdinalOrder.TOP, False), 'on top': (OrdinalOrder.TOP, False),
        'at the bottom': (OrdinalOrder.BOTTOM, False),
        'in front': (OrdinalOrder.NEAREST, False), 'at the front': (OrdinalOrder.NEAREST, False),
        'in the front': (OrdinalOrder.NEAREST, False),
        'at the back': (OrdinalOrder.FARTHEST, False),
        'in the back': (OrdinalOrder.FARTHEST, False),
    }
)

# What 'closest to the camera' is closest to: the viewer, not an object to detect. A relation
# of nearness to one of these becomes an ordering (nearest / farthest first).
CAMERA_REFERENCES: tuple[str, ...] = ('the camera', 'camera', 'me', 'you', 'us', 'the viewer')

# Words that start a question. Only honoured at the start of a command; later in a sentence
# 'is there' or 'do you see' are fillers ('how many cups are there').
QUESTION_PHRASES = MappingProxyType(
    {
        'how many': QueryKind.COUNT, 'count': QueryKind.COUNT, 'count how many': QueryKind.COUNT,
        'count the number of': QueryKind.COUNT, 'what is the number of': QueryKind.COUNT,
        'the number of': QueryKind.COUNT,
        'is there': QueryKind.EXISTS, 'are there': QueryKind.EXISTS, 'there is': QueryKind.EXISTS,
        'there are': QueryKind.EXISTS, 'do you see': QueryKind.EXISTS,
        'can you see': QueryKind.EXISTS, 'could you see': QueryKind.EXISTS,
        'do you notice': QueryKind.EXISTS, 'can you spot': QueryKind.EXISTS,
        'do you spot': QueryKind.EXISTS,
        'what': QueryKind.WHAT, 'which': QueryKind.WHICH, 'which of the': QueryKind.WHICH,
        'which one of the': QueryKind.WHICH,
    }
)

DETERMINERS: tuple[str, ...] = (
    'the', 'a', 'an', 'any', 'some', 'this', 'that', 'these', 'those', 'every', 'each', 'all',
    'my', 'your', 'our', 'its', 'their', 'his', 'her', 'all the', 'all of the', 'any of the',
    'one of the', 'some of the', 'each of the', 'every one of the',
)
# Determiners that speak of several objects at once.
PLURAL_DETERMINERS: frozenset[str] = frozenset(
    {'these', 'those', 'all', 'all the', 'all of the', 'some of the'}
)
COPULAS: tuple[str, ...] = ('is', 'are', 'was', 'were', 'be')
RELATIVE_PRONOUNS: tuple[str, ...] = ('that', 'which', 'who', 'whose')
# Participles between a noun and its relation: 'the cup sitting on the table'.
PARTICIPLES: tuple[str, ...] = (
    'located', 'situated', 'sitting', 'sits', 'lying', 'lies', 'laying', 'placed', 'standing',
    'stands', 'positioned', 'resting', 'rests', 'kept', 'stored', 'hanging', 'hangs', 'parked',
    'seated', 'mounted', 'stacked', 'found', 'shown', 'seen', 'appearing', 'leaning', 'floating',
    'perched', 'lying down',
)
# Prepositions and participles that describe the object itself rather than where it is: the
# whole phrase stays in the detector text ('the person in the red shirt', 'the mug with a
# handle'). 'in' counts as one of these when its object is clothing (see CLOTHING_NOUNS).
DESCRIPTIVE_WORDS: tuple[str, ...] = (
    'with', 'without', 'wearing', 'holding', 'carrying', 'of', 'made of', 'full of',
    'filled with', 'covered with', 'covered in', 'dressed in', 'containing', 'having', 'showing',
    'featuring', 'labeled', 'labelled', 'marked', 'at', 'for', 'to', 'into', 'across',
    'along', 'around', 'against', 'through', 'toward', 'towards', 'like', 'among', 'outside',
    'outside of', 'that has', 'that have', 'which has', 'who has', 'using', 'riding', 'eating',
    'drinking', 'playing',
    'talking to', 'looking at', 'pointing at',
)
# Descriptions that need no object: they stay in the detector text.
ATTRIBUTE_PHRASES: tuple[str, ...] = (
    'in the middle', 'in the center', 'in the centre', 'in the corner', 'upside down',
    'on its side', 'turned over', 'in the middle of', 'in the center of', 'in the centre of',
    'at the edge of', 'at the end of',
)
CLOTHING_NOUNS: frozenset[str] = frozenset({
    'shirt', 't-shirt', 'tshirt', 'jacket', 'coat', 'dress', 'hat', 'cap', 'hoodie', 'sweater',
    'jumper', 'jersey', 'uniform', 'suit', 'vest', 'skirt', 'pants', 'trousers', 'jeans',
    'shorts', 'scarf', 'helmet', 'gloves', 'glove', 'shoes', 'shoe', 'boots', 'boot', 'tank',
    'tank top', 'tee', 'polo', 'bikini', 'swimsuit', 'wetsuit', 'pajamas', 'sweatpants',
    'leggings', 'cardigan', 'blazer', 'tuxedo',
    'blouse', 'costume', 'outfit', 'clothes', 'clothing', 'apron', 'robe', 'gown', 'tie',
    'sunglasses', 'glasses', 'mask', 'backpack', 'overalls', 'sweatshirt', 'tracksuit',
})
# Heads that are not a kind of object: 'the one', 'something'. The noun is then None.
GENERIC_NOUNS: tuple[str, ...] = (
    'one', 'ones', 'something', 'anything', 'everything', 'object of interest',
)
# The detector text for such a head: 'the red one' is looked for as 'red object'. The agent also
# asks the backend for it when a WHAT question needs every object in view.
GENERIC_PHRASE = 'object'
# Nouns that name no kind of object, so they match any object ('the red thing', 'any shape'):
# the color_shape backend, the simulator's ground truth and WHAT questions read them so.
ANY_OBJECT_NOUNS: frozenset[str] = frozenset({
    GENERIC_PHRASE, 'thing', 'item', 'shape', *(p for p in GENERIC_NOUNS if ' ' not in p),
})
# Words that can never be the object of a command: 'find it' does not say what to find.
NOT_NOUNS: frozenset[str] = frozenset({
    'it', 'them', 'they', 'this', 'that', 'these', 'those', 'he', 'she', 'him', 'her', 'i', 'we',
    'me', 'you', 'us', 'the', 'a', 'an', 'and', 'or', 'of', 'to', 'at', 'for', 'from', 'with',
    'is', 'are', 'was', 'be', 'not', 'no', 'what', 'which', 'who', 'where', 'how', 'why', 'when',
    'there', 'here', 'its', 'his', 'their', 'my', 'your', 'our', 'up', 'down', 'off', 'out',
    'so', 'if', 'than', 'then', 'do', 'does', 'could', 'would', 'should',
    'please', 'thanks', 'yes', 'ok', 'okay', 'hello', 'hi', 'hey',
})
# 'not red' is a description, not the colour red.
NEGATIONS: tuple[str, ...] = ('not', 'no', 'non')

# Commands that end the standing grounding ('track the person' ... 'stop'). A command that is
# exactly one of these (politeness and openers aside) is a stop command; the '-ing' ones may
# also name what to stop ('stop tracking the person').
STOP_PHRASES: tuple[str, ...] = (
    'stop', 'cancel', 'abort', 'stop it', 'cancel that', 'never mind', 'forget it',
    'stop tracking', 'stop following', 'stop watching', 'cancel tracking',
)
STOP_WITH_OBJECT: tuple[str, ...] = (
    'stop tracking', 'stop following', 'stop watching', 'cancel tracking',
)

# Politeness and scene references, dropped wherever they appear.
FILLER_PHRASES: tuple[str, ...] = (
    'please', 'kindly', 'thanks', 'thank you', 'thank you very much', 'for me', 'right now',
    'now', 'then', 'just', 'again', 'quickly', 'over there', 'over here', 'right there',
    'right here', 'there', 'here', 'in the image', 'in this image', 'in the picture',
    'in this picture', 'in the scene', 'in this scene', 'in the photo', 'in this photo',
    'in the frame', 'in view', 'in the view', 'on camera', 'on the screen', 'visible',
    'you can see', 'that you can see', 'that you see', 'you see', 'do you see', 'can you see',
    'is there', 'are there', 'if you can', 'if possible', 'currently', 'at the moment',
    'all the way', 'slightly', 'gently', 'and let go', 'let go',
)
# Openers dropped at the start of a command only ('robot' later in a sentence is an object).
LEADING_FILLERS: tuple[str, ...] = (
    'hey', 'hi', 'hello', 'ok', 'okay', 'robot', 'hey robot', 'ok robot', 'so', 'and', 'also',
    'well', 'can you', 'could you', 'would you', 'will you', 'can u', 'could u',
    'would you please', 'i want you to', 'i need you to', "i'd like you to",
    'i would like you to', 'go ahead and', 'try to', 'please try to', 'tell me', 'let me know',
    'do you know', 'i want', 'i need', 'i would like', "i'd like", "let's", 'let us',
    'are you able to', 'you should', 'go', 'go and', 'come', 'come and',
)
# Contractions expanded before anything else ('what's' -> 'what is').
CONTRACTIONS = MappingProxyType(
    {
        "what's": 'what is', "where's": 'where is', "there's": 'there is', "it's": 'it is',
        "that's": 'that is', "who's": 'who is', "which's": 'which is', "here's": 'here is',
        "isn't": 'is not', "aren't": 'are not', "don't": 'do not', "doesn't": 'does not',
        "can't": 'can not', 'cannot': 'can not', "what're": 'what are', "where're": 'where are',
        "how's": 'how is', "i'm": 'i am', "you're": 'you are', "they're": 'they are',
    }
)

# Plural nouns -> singular, where dropping the 's' is wrong.
IRREGULAR_PLURALS = MappingProxyType(
    {
        'people': 'person', 'persons': 'person', 'men': 'man', 'women': 'woman',
        'children': 'child', 'mice': 'mouse', 'geese': 'goose', 'feet': 'foot',
        'teeth': 'tooth', 'knives': 'knife', 'leaves': 'leaf', 'shelves': 'shelf',
        'wolves': 'wolf', 'halves': 'half', 'loaves': 'loaf', 'scarves': 'scarf',
        'calves': 'calf', 'lives': 'life', 'wives': 'wife', 'thieves': 'thief', 'buses': 'bus',
        'cookies': 'cookie', 'movies': 'movie', 'pies': 'pie', 'ties': 'tie',
        'hoodies': 'hoodie', 'brownies': 'brownie', 'zombies': 'zombie', 'selfies': 'selfie',
        'tomatoes': 'tomato', 'potatoes': 'potato', 'mangoes': 'mango', 'heroes': 'hero',
        'echoes': 'echo', 'dominoes': 'domino', 'volcanoes': 'volcano', 'cacti': 'cactus',
        'fungi': 'fungus', 'oxen': 'ox', 'dice': 'die', 'indices': 'index',
        'vertices': 'vertex', 'matrices': 'matrix',
    }
)
# Nouns ending in 's' that are singular (or have no singular): they stay as written.
SINGULAR_NOUNS_IN_S: frozenset[str] = frozenset({
    'bus', 'gas', 'lens', 'canvas', 'atlas', 'cactus', 'iris', 'tennis', 'chassis', 'news',
    'series', 'species', 'scissors', 'pants', 'jeans', 'shorts', 'trousers', 'pliers', 'tongs',
    'binoculars', 'goggles', 'sunglasses', 'headphones', 'earphones', 'tweezers', 'clothes',
    'overalls', 'christmas', 'bias', 'alias', 'chaos', 'kudos', 'pancreas', 'octopus',
    'walrus', 'virus', 'hippopotamus', 'asparagus', 'hummus', 'abacus', 'bonus', 'campus',
    'citrus', 'physics', 'mathematics', 'measles', 'molasses',
})

# fmt: on

# Word endings of singular nouns that the inflection library would strip an 's' from ('bus' ->
# 'bu', 'iris' -> 'iri'); a possessive is not a plural either.
_SINGULAR_ENDINGS = ('us', 'is', "'s")
# Words after which a name goes on about something else: 'cup with a handle', 'person in red'.
_PREPOSITIONS = frozenset(p for p in (*DESCRIPTIVE_WORDS, *RELATION_PHRASES) if ' ' not in p)


def _inflection_engine() -> inflect.engine:
    """The `inflect` engine, taught the table entries it gets wrong or does not know."""
    engine = inflect.engine()
    common: dict[str, str] = {}
    for plural, singular in IRREGULAR_PLURALS.items():
        common.setdefault(singular, plural)  # the first listed is the common plural
    for singular, plural in common.items():
        engine.defnoun(singular, plural)
    for noun in SINGULAR_NOUNS_IN_S - common.keys():
        if engine.plural_noun(noun) == noun + 's':
            engine.defnoun(noun, noun)  # 'scissors', 'pants': one form for one and many
    return engine


_ENGINE = _inflection_engine()


def _split_head(phrase: str) -> tuple[str, str]:
    """An object name as (words up to its head noun, the rest): ('red cups', ' with a handle')."""
    words = phrase.split(' ')
    cut = next((i for i, w in enumerate(words) if i and w in _PREPOSITIONS), len(words))
    return ' '.join(words[:cut]), ''.join(f' {w}' for w in words[cut:])


@lru_cache(maxsize=4096)
def singular_noun(phrase: str) -> str:
    """The singular of an object name ('boxes' -> 'box', 'red knives' -> 'red knife',
    'cups with lids' -> 'cup with lids'); a name that is not plural comes back as written
    ('bus', 'scissors', 'glass').
    """
    noun, rest = _split_head(phrase)
    head = noun.rsplit(' ', 1)[-1]
    if not head or head in SINGULAR_NOUNS_IN_S or head.endswith(_SINGULAR_ENDINGS):
        return phrase
    return (_ENGINE.singular_noun(noun) or noun) + rest


@lru_cache(maxsize=4096)
def plural_noun(phrase: str) -> str:
    """The plural of an object name ('box' -> 'boxes', 'knife' -> 'knives', 'bus' -> 'buses',
    'cup with a lid' -> 'cups with a lid'); a name that is already plural comes back as written.
    """
    if not phrase or is_plural(phrase):
        return phrase
    noun, rest = _split_head(phrase)
    return (_ENGINE.plural_noun(noun) or noun) + rest


def is_plural(phrase: str) -> bool:
    """True when the object name is a plural ('cups', 'people'), by `singular_noun`."""
    return singular_noun(phrase) != phrase


def counted(count: int, phrase: str) -> str:
    """'1 box', '0 knives', '3 glasses': a count with its object name in the right number."""
    one = singular_noun(phrase)
    return f'{count} {one if count == 1 else plural_noun(one)}'


def vocabulary_words() -> dict[str, list[str]]:
    """Every phrase the parser knows, by category, for grammars built from the same tables.

    Keys: verbs, action_verbs, directions, colours, colour_names, sizes, shapes, relations,
    ordinals, superlatives, comparatives, numbers, positions, camera, questions, determiners,
    copulas, relative_pronouns, participles, descriptive, attributes, generic, negations,
    fillers, leading_fillers. Phrases are lower case, words separated by single spaces, each
    listed once in table order.
    """
    tables: dict[str, tuple[str, ...] | list[str]] = {
        'verbs': list(VERB_PHRASES),
        'action_verbs': list(ACTION_VERB_PHRASES),
        'directions': list(DIRECTION_PHRASES),
        'colours': [*COLOURS, *COLOUR_SYNONYMS],
        'colour_names': list(COLOUR_NAMES),
        'sizes': list(SIZE_SYNONYMS),
        'shapes': list(SHAPE_NOUNS),
        'relations': list(RELATION_PHRASES),
        'ordinals': list(ORDINAL_WORDS),
        'superlatives': list(SUPERLATIVES),
        'comparatives': list(COMPARATIVES),
        'numbers': list(NUMBER_WORDS),
        'positions': list(POSITION_PHRASES),
        'camera': CAMERA_REFERENCES,
        'questions': list(QUESTION_PHRASES),
        'determiners': DETERMINERS,
        'copulas': COPULAS,
        'relative_pronouns': RELATIVE_PRONOUNS,
        'participles': PARTICIPLES,
        'descriptive': DESCRIPTIVE_WORDS,
        'attributes': ATTRIBUTE_PHRASES,
        'generic': GENERIC_NOUNS,
        'negations': NEGATIONS,
        'fillers': FILLER_PHRASES,
        'leading_fillers': LEADING_FILLERS,
    }
    return {name: list(dict.fromkeys(words)) for name, words in tables.items()}

"""The prompts the generative backends send, and the Qwen chat layout they are wrapped in.

The grounding prompt is GroundingME's, verbatim, so results are comparable with its published
numbers. Kept apart from the backend so the exact text is easy to read, cite and test.
"""

from __future__ import annotations

import json

__all__ = [
    'DETECTION_PROMPT',
    'GROUNDING_ME_PROMPT',
    'IMAGE_PAD_TOKEN',
    'VERIFICATION_PROMPT',
    'VISION_END_TOKEN',
    'VISION_START_TOKEN',
    'detection_prompt',
    'grounding_prompt',
    'qwen_chat_prompt',
    'verification_prompt',
]

#: GroundingME's grounding prompt (one box at most, `{"bbox_2d": null}` when absent).
GROUNDING_ME_PROMPT = (
    "All spatial relationships are defined from the viewer's perspective, where 'front' means "
    "closer to the viewer and 'back' means farther from the viewer. Please provide the bounding "
    'box coordinate of the object the following statement describes:\n{description}\nEnsure '
    'that all details mentioned about the object are accurate. Provide at most one bounding box. '
    'If a matching object is found, provide its bounding box as a JSON in the format '
    '{"bbox_2d": [x1, y1, x2, y2]}. If no matching object is found, output {"bbox_2d": null}.'
)

#: Every instance of one phrase, as a JSON list (the format Qwen-VL models are trained on).
DETECTION_PROMPT = (
    'Locate every {phrase} in the image. Output the bounding box of each one as a JSON list in '
    'the format [{"bbox_2d": [x1, y1, x2, y2], "label": "{phrase}"}]. If there is none, output [].'
)

#: A yes/no question about one candidate box, given in the model's own coordinate convention.
VERIFICATION_PROMPT = (
    "All spatial relationships are defined from the viewer's perspective, where 'front' means "
    "closer to the viewer and 'back' means farther from the viewer. Look at the object inside "
    'the bounding box {box}. Does the following statement describe this object, with every '
    'detail accurate?\n{description}\nAnswer yes or no.'
)

VISION_START_TOKEN = '<|vision_start|>'
VISION_END_TOKEN = '<|vision_end|>'
IMAGE_PAD_TOKEN = '<|image_pad|>'


def _one_line(text: str) -> str:
    # Newlines inside a description would break the prompt's own line structure.
    return ' '.join(text.split())


def grounding_prompt(description: str) -> str:
    """GroundingME's prompt for `description`. Placeholders are filled by replacement because the
    prompt itself holds JSON braces."""
    return GROUNDING_ME_PROMPT.replace('{description}', _one_line(description))


def detection_prompt(phrase: str) -> str:
    """Ask for every instance of `phrase` as a JSON list of boxes."""
    quoted = json.dumps(_one_line(phrase))[1:-1]
    return DETECTION_PROMPT.replace('{phrase}', quoted)


def verification_prompt(description: str, box_coordinates: list[int]) -> str:
    """Ask whether the object in `box_coordinates` (model convention) is `description`."""
    box = json.dumps({'bbox_2d': [int(v) for v in box_coordinates]})
    return VERIFICATION_PROMPT.replace('{box}', box).replace(
        '{description}', _one_line(description)
    )


def qwen_chat_prompt(user_text: str, *, image_tokens: int, system: str | None = None) -> str:
    """One user turn with one image, in the Qwen chat layout, ready for the assistant's reply.

    This is what the models' chat templates produce for a single image followed by text; it is
    written out here so it does not depend on a template file being present in the model folder.
    `image_tokens` is the number of `<|image_pad|>` placeholders: prod(image_grid_thw) / merge^2.
    """
    if image_tokens < 1:
        raise ValueError(f'an image needs at least one placeholder token, got {image_tokens}')
    parts = []
    if system:
        parts.append(f'<|im_start|>system\n{system}<|im_end|>\n')
    parts.append(
        f'<|im_start|>user\n{VISION_START_TOKEN}{IMAGE_PAD_TOKEN * image_tokens}'
        f'{VISION_END_TOKEN}{user_text}<|im_end|>\n<|im_start|>assistant\n'
    )
    return ''.join(parts)

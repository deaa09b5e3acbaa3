"""Run by the Python of the server venv (Makefile: $(VENV)-vlm-server), not by the tests' own.

Saves, next to a tiny Qwen2.5-VL made by tiny_models_vlm.py, what `transformers serve` needs to
serve it: a Qwen2_5_VLProcessor with a chat template (one image part, one text part per turn,
the Qwen chat layout of prompts.qwen_chat_prompt) and a video processor (the processor class
requires one). Usage: python served_vlm_processor.py MODEL_DIR
"""

from __future__ import annotations

import sys

from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or part['type'] == 'image_url' %}"
    '<|vision_start|><|image_pad|><|vision_end|>'
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    '{% endfor %}{% endif %}<|im_end|>\n{% endfor %}'
    '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}'
)


def main(directory: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(directory)
    images = AutoImageProcessor.from_pretrained(directory)
    videos = Qwen2VLVideoProcessor(
        patch_size=images.patch_size,
        merge_size=images.merge_size,
        temporal_patch_size=images.temporal_patch_size,
    )
    processor = Qwen2_5_VLProcessor(
        image_processor=images,
        tokenizer=tokenizer,
        video_processor=videos,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(directory)


if __name__ == '__main__':
    main(sys.argv[1])

"""Tiny, randomly initialised OWLv2 / OWL-ViT models written to disk like real checkpoints.

No weights can be downloaded on test machines, so the tests build a model from a small config,
write it with `save_pretrained` (safetensors) together with its processor (a tiny CLIP BPE
tokenizer over single letters and the real OWL image processor) and load it back through the
same `from_pretrained` calls the product uses. Reproduce a test model from the shell with:

    python test/backends/tiny_models.py owlv2 OUT_DIR      # or: owlvit
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path
from typing import Any

__all__ = [
    'IMAGE_SIZE',
    'MAX_TEXT_TOKENS',
    'build_owl_model_dir',
    'main',
    'owl_model_dir',
    'tiny_clip_tokenizer',
    'tiny_owl_config',
]

#: Square input side of the tiny vision tower (4x4 patches of 8 px).
IMAGE_SIZE = 32
#: Text positions of the tiny text tower; the real OWL models also use 16.
MAX_TEXT_TOKENS = 16

_FAMILIES = ('owlv2', 'owlvit')
# Session-wide memo so tests in different directories share one model directory per family.
_BUILT: dict[tuple[str, str], Path] = {}


def _tiny_vocab() -> dict[str, int]:
    """Single letters, with and without the end-of-word suffix; no merges are needed.

    Id 0 is the pad token (OWL marks padded queries by a 0 first id). The text tower pools at
    argmax(input_ids), so the end-of-text token must carry the highest id.
    """
    vocab = {'!': 0}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
    for letter in string.ascii_lowercase:
        vocab[letter + '</w>'] = len(vocab)
    vocab['<|startoftext|>'] = len(vocab)
    vocab['<|endoftext|>'] = len(vocab)
    return vocab


def tiny_clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer over single letters (55 ids, end-of-text = 54)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(
        vocab=_tiny_vocab(), merges=[], pad_token='!', model_max_length=MAX_TEXT_TOKENS
    )


def tiny_owl_config(family: str, *, image_size: int = IMAGE_SIZE) -> Any:
    """A small Owlv2Config / OwlViTConfig whose text ids match `tiny_clip_tokenizer`."""
    from transformers import Owlv2Config, OwlViTConfig

    vocab = _tiny_vocab()
    text_config = {
        'vocab_size': len(vocab),
        'hidden_size': 32,
        'num_hidden_layers': 2,
        'num_attention_heads': 4,
        'intermediate_size': 37,
        'max_position_embeddings': MAX_TEXT_TOKENS,
        'bos_token_id': vocab['<|startoftext|>'],
        'eos_token_id': vocab['<|endoftext|>'],
        'pad_token_id': 0,
    }
    vision_config = {
        'image_size': image_size,
        'patch_size': 8,
        'hidden_size': 32,
        'num_hidden_layers': 2,
        'num_attention_heads': 4,
        'intermediate_size': 37,
    }
    config_class = {'owlv2': Owlv2Config, 'owlvit': OwlViTConfig}[_check_family(family)]
    return config_class(text_config=text_config, vision_config=vision_config, projection_dim=32)


def _check_family(family: str) -> str:
    if family not in _FAMILIES:
        raise ValueError(f'unknown OWL family {family!r}; expected one of {_FAMILIES}')
    return family


def build_owl_model_dir(
    family: str, out_dir: Path, *, seed: int = 0, image_size: int = IMAGE_SIZE
) -> Path:
    """Write a random tiny OWL model plus processor to `out_dir` (created) and return it."""
    import torch
    from transformers import (
        Owlv2ForObjectDetection,
        Owlv2ImageProcessorPil,
        Owlv2Processor,
        OwlViTForObjectDetection,
        OwlViTImageProcessorPil,
        OwlViTProcessor,
    )

    family = _check_family(family)
    torch.manual_seed(seed)
    config = tiny_owl_config(family, image_size=image_size)
    size = {'height': image_size, 'width': image_size}
    if family == 'owlv2':
        model = Owlv2ForObjectDetection(config)
        processor = Owlv2Processor(
            image_processor=Owlv2ImageProcessorPil(size=size), tokenizer=tiny_clip_tokenizer()
        )
    else:
        model = OwlViTForObjectDetection(config)
        processor = OwlViTProcessor(
            image_processor=OwlViTImageProcessorPil(size=size, crop_size=size),
            tokenizer=tiny_clip_tokenizer(),
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)
    return out_dir


def owl_model_dir(family: str, base: Path) -> Path:
    """The tiny model directory of `family` under `base`, built on first use in this process."""
    key = (family, str(base))
    if key not in _BUILT:
        _BUILT[key] = build_owl_model_dir(family, base / f'tiny-{family}')
    return _BUILT[key]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('family', choices=_FAMILIES)
    parser.add_argument('out_dir', type=Path)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--image-size', type=int, default=IMAGE_SIZE)
    args = parser.parse_args(argv)
    path = build_owl_model_dir(
        args.family, args.out_dir, seed=args.seed, image_size=args.image_size
    )
    print(path)
    return 0


if __name__ == '__main__':
    sys.exit(main())

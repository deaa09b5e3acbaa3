"""Tiny random Grounding DINO, Qwen2.5-VL and Qwen3-VL models saved like real checkpoints.

No weights can be downloaded here, so the tests build each model from a small config with random
weights, `save_pretrained` it (safetensors, tokenizer, image processor) into a directory and let
the backend load it through the same `from_pretrained` calls it uses for real models. The answers
of random weights are meaningless; what is tested is that every code path runs and that whatever
comes out is turned into boxes, an absence, or a readable error.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    'GDINO_WORDS',
    'QWEN_SPECIAL_TOKENS',
    'build_tiny_grounding_dino',
    'build_tiny_qwen2_5_vl',
    'build_tiny_qwen3_vl',
]

# Word-level vocabulary of the tiny Grounding DINO text encoder (ids must stay below 64).
GDINO_WORDS = (
    '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '.', 'a', 'the', 'red', 'green', 'blue',
    'yellow', 'cube', 'mug', 'cup', 'bottle', 'sphere', 'laptop', 'box', 'person', 'shirt',
    'table', 'object', 'left', 'of', 'small', 'large', 'cat', 'dog',
)  # fmt: skip

QWEN_SPECIAL_TOKENS = (
    '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|vision_start|>', '<|vision_end|>',
    '<|image_pad|>', '<|video_pad|>',
)  # fmt: skip

# Text the tiny byte-level BPE is trained on: replies and answers like the real models give, so
# that the yes/no spellings are single tokens and random generations contain JSON-like pieces.
_QWEN_CORPUS = (
    '```json\n[{"bbox_2d": [12, 34, 56, 78], "label": "red cube"}]\n```',
    '{"bbox_2d": null}',
    '{"point_2d": [40, 30]}',
    'Yes',
    'yes',
    ' yes',
    'No',
    'no',
    ' no',
    'Locate every red cube in the image. Answer yes or no.',
)
_QWEN_VOCAB = 400  # BPE training target (the tokenizer ends up at most this large)
_QWEN_MODEL_VOCAB = 448  # logits width; larger than the tokenizer, as in the real models


def build_tiny_grounding_dino(directory: Path, *, seed: int = 0) -> Path:
    """A Grounding DINO with a Swin backbone and BERT text encoder of a few thousand weights."""
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    torch.manual_seed(seed)
    swin = SwinConfig(
        window_size=7,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        image_size=98,
        out_indices=[2, 3, 4],
    )
    config = GroundingDinoConfig(
        d_model=32,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=4,
        decoder_ffn_dim=4,
        num_queries=10,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=6,
        use_timm_backbone=False,
        backbone_config=swin,
        max_text_len=32,
        text_config={
            'model_type': 'bert',
            'hidden_size': 8,
            'num_hidden_layers': 2,
            'num_attention_heads': 2,
            'intermediate_size': 8,
            'max_position_embeddings': 32,
            'vocab_size': 64,
        },
    )
    model = GroundingDinoForObjectDetection(config).eval()
    # A vocabulary dict, not a vocab file: transformers 5 reads a vocab_file as all-[UNK].
    tokenizer = BertTokenizer(vocab={word: i for i, word in enumerate(GDINO_WORDS)})
    image_processor = GroundingDinoImageProcessorPil(
        size={'shortest_edge': 64, 'longest_edge': 96}
    )
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def _qwen_tokenizer(directory: Path) -> dict[str, int]:
    """Train and save a byte-level BPE tokenizer with the Qwen chat tokens; their ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_QWEN_VOCAB,
        special_tokens=list(QWEN_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(_QWEN_CORPUS) * 20, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token='<|im_end|>', pad_token='<|endoftext|>'
    )
    tokenizer.save_pretrained(directory)
    return {token: int(bpe.token_to_id(token)) for token in QWEN_SPECIAL_TOKENS}


def _qwen_text_config(ids: dict[str, int], **extra: object) -> dict[str, object]:
    return {
        'vocab_size': _QWEN_MODEL_VOCAB,
        'hidden_size': 32,
        'intermediate_size': 37,
        'num_hidden_layers': 2,
        'num_attention_heads': 4,
        'num_key_value_heads': 2,
        'max_position_embeddings': 512,
        'bos_token_id': ids['<|endoftext|>'],
        'eos_token_id': ids['<|im_end|>'],
        'pad_token_id': ids['<|endoftext|>'],
        **extra,
    }


def _qwen_vision_config(**extra: object) -> dict[str, object]:
    return {
        'depth': 2,
        'hidden_size': 32,
        'intermediate_size': 37,
        'num_heads': 4,
        'spatial_merge_size': 2,
        'temporal_patch_size': 2,
        'out_hidden_size': 32,
        **extra,
    }


def _qwen_token_ids(ids: dict[str, int]) -> dict[str, int]:
    return {
        'image_token_id': ids['<|image_pad|>'],
        'video_token_id': ids['<|video_pad|>'],
        'vision_start_token_id': ids['<|vision_start|>'],
        'vision_end_token_id': ids['<|vision_end|>'],
    }


def _save_qwen_image_processor(directory: Path, patch: int) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    factor = patch * 2  # patch x spatial merge
    Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=factor * factor,
        max_pixels=factor * factor * 16,
    ).save_pretrained(directory)


def build_tiny_qwen2_5_vl(directory: Path, *, seed: int = 0) -> Path:
    """A Qwen2.5-VL (patch 14, boxes in resized-input pixels) with hidden size 32."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    directory.mkdir(parents=True, exist_ok=True)
    ids = _qwen_tokenizer(directory)
    torch.manual_seed(seed)
    config = Qwen2_5_VLConfig(
        text_config=_qwen_text_config(
            ids,
            rope_parameters={
                'rope_type': 'default',
                'rope_theta': 1e4,
                'mrope_section': [2, 1, 1],
            },
        ),
        vision_config=_qwen_vision_config(
            patch_size=14, window_size=28, fullatt_block_indexes=[1]
        ),
        **_qwen_token_ids(ids),
    )
    Qwen2_5_VLForConditionalGeneration(config).eval().save_pretrained(directory)
    _save_qwen_image_processor(directory, patch=14)
    return directory


def build_tiny_qwen3_vl(directory: Path, *, seed: int = 0) -> Path:
    """A Qwen3-VL (patch 16, boxes in 0..1000) with hidden size 32 and deepstack features."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    directory.mkdir(parents=True, exist_ok=True)
    ids = _qwen_tokenizer(directory)
    torch.manual_seed(seed)
    config = Qwen3VLConfig(
        text_config=_qwen_text_config(
            ids,
            head_dim=8,
            rope_parameters={
                'rope_type': 'default',
                'rope_theta': 1e4,
                'mrope_section': [2, 1, 1],
                'mrope_interleaved': True,
            },
        ),
        vision_config=_qwen_vision_config(
            patch_size=16, num_position_embeddings=16, deepstack_visual_indexes=[0, 1]
        ),
        **_qwen_token_ids(ids),
    )
    Qwen3VLForConditionalGeneration(config).eval().save_pretrained(directory)
    _save_qwen_image_processor(directory, patch=16)
    return directory

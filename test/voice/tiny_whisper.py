"""A tiny, randomly initialised Whisper written to disk like a real checkpoint.

No weights can be downloaded on test machines, so the tests build a Whisper from a small config,
write it with `save_pretrained` (safetensors) together with its processor (the real Whisper
feature extractor and a byte-level BPE tokenizer whose vocabulary holds some command words and
Whisper's special tokens) and load it back through the same
`from_pretrained` calls the product uses. Its transcripts are random words: what a recogniser
that does not understand the audio produces.

    python test/voice/tiny_whisper.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ['build_tiny_whisper']

_SPECIAL = (
    '<|endoftext|>',
    '<|startoftranscript|>',
    '<|en|>',
    '<|transcribe|>',
    '<|notimestamps|>',
)
_WORDS = (
    *('pick', 'up', 'the', 'red', 'mug', 'find', 'a', 'green', 'cup', 'track', 'blue', 'ball'),
    *('on', 'left', 'of', 'table', 'go', 'to', 'robot', 'weather', 'is', 'nice', 'hello'),
)


def build_tiny_whisper(directory: Path, *, seed: int = 0) -> Path:
    """Write a tiny random Whisper model and its processor to `directory`; return it."""
    import torch
    from transformers import (
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    directory.mkdir(parents=True, exist_ok=True)
    # Whole words only (decoding maps the byte symbols back whether or not they are ids), so
    # the random model writes random words, not random letters.
    vocab = {'Ġ' + word: index for index, word in enumerate(dict.fromkeys(_WORDS))}
    for token in _SPECIAL:
        vocab[token] = len(vocab)
    (directory / 'vocab.json').write_text(json.dumps(vocab), encoding='utf-8')
    (directory / 'merges.txt').write_text('#version: 0.2\n', encoding='utf-8')
    tokenizer: Any = WhisperTokenizer(
        str(directory / 'vocab.json'),
        str(directory / 'merges.txt'),
        unk_token='<|endoftext|>',
        bos_token='<|endoftext|>',
        eos_token='<|endoftext|>',
        additional_special_tokens=list(_SPECIAL[1:]),
    )
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer)
    config = WhisperConfig(
        vocab_size=len(vocab),
        num_mel_bins=80,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=128,
        decoder_start_token_id=vocab['<|startoftranscript|>'],
        eos_token_id=vocab['<|endoftext|>'],
        pad_token_id=vocab['<|endoftext|>'],
        bos_token_id=vocab['<|endoftext|>'],
    )
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    model.generation_config.forced_decoder_ids = None
    model.generation_config.max_length = config.max_target_positions
    # As in real Whisper checkpoints, a transcript never opens with end-of-text: the random
    # model always writes some words.
    model.generation_config.begin_suppress_tokens = [vocab['<|endoftext|>']]
    model.generation_config.suppress_tokens = [vocab[token] for token in _SPECIAL[1:]]
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
    return directory


if __name__ == '__main__':
    print(build_tiny_whisper(Path(sys.argv[1])))

"""benchmarks/train_speed.py times like with like: given lmbook's weights, its two reference GPTs
(torch.nn.TransformerEncoderLayer, and nanoGPT's fused-QKV SDPA block) compute lmbook's Decoder,
the same loss and the same gradients."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from lmbook.models import Decoder, DecoderConfig

_spec = importlib.util.spec_from_file_location(
    "train_speed", Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"
)
train_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_speed)

CFG = DecoderConfig(vocab_size=11, max_len=8, n_layers=2, n_heads=2, d_model=16, dropout=0.0)


def _qkv_grad(ref, i: int) -> torch.Tensor:
    block = ref.blocks.layers[i] if isinstance(ref, train_speed.TorchDecoder) else ref.blocks[i]
    return block.self_attn.in_proj_weight.grad if hasattr(block, "self_attn") else block.qkv.weight.grad


@pytest.mark.parametrize("reference", ["TorchDecoder", "FusedGPT"])
def test_reference_gpt_with_lmbooks_weights_computes_lmbooks_decoder(reference):
    torch.manual_seed(0)
    ours, ref = Decoder(CFG), getattr(train_speed, reference)(CFG)
    x, y = torch.randint(0, CFG.vocab_size, (2, 3, CFG.max_len))
    assert abs(ours(x, y).loss.item() - ref(x, y).item()) > 1e-3, "fresh models should differ before the copy"
    train_speed.copy_weights(ours, ref)
    mine, theirs = ours(x, y).loss, ref(x, y)
    torch.testing.assert_close(theirs, mine)
    mine.backward()
    theirs.backward()
    torch.testing.assert_close(ref.tok_emb.weight.grad, ours.tok_emb.weight.grad)  # embedding + tied head
    torch.testing.assert_close(ref.pos_emb.weight.grad, ours.pos_emb.weight.grad)
    for i, block in enumerate(ours.blocks):
        torch.testing.assert_close(_qkv_grad(ref, i), block.self_attn.in_proj_weight.grad)


def test_train_step_times_checks_the_models_agree():
    """A short run: the timings come back for all four entries, and the first-loss check passed."""
    times = train_speed.train_step_times(threads=1, steps=2, warmup=1)
    assert set(times) == {"lmbook", "lmbook, same AdamW", "torch.nn", "fused GPT"}
    assert all(t > 0 for t in times.values())

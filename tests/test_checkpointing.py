"""Tests for lmbook.checkpointing's all-or-nothing saves: a save killed or refused half-way leaves the old checkpoint.

Each interruption is real: a child process saves over a checkpoint, stops at a chosen point of the save
(after the weights, after both files, between the two renames) and is killed with SIGKILL there.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from lmbook.checkpointing import load_checkpoint, read_metrics, save_checkpoint
from lmbook.models import Decoder, DecoderConfig

CONFIG = DecoderConfig(vocab_size=20, max_len=8, n_layers=1, n_heads=2, d_model=8)


def _decoder(seed: int) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(CONFIG)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _hidden_siblings(folder: Path) -> list[Path]:
    return sorted(folder.parent.glob(f".{folder.name}.*"))


# The child saves a different model over ``folder`` and is told to stop at one point of the save:
# "weights" (model.safetensors written, config.json not yet), "both" (both files written, nothing
# swapped yet) or "rename" (the old folder renamed aside, the new one not yet in place).
CHILD = textwrap.dedent("""
    import os, sys, time
    import torch
    import lmbook.checkpointing as C
    from lmbook.models import Decoder, DecoderConfig

    folder, stop = sys.argv[1], sys.argv[2]

    def pause():
        print("PAUSED", flush=True)
        time.sleep(120)

    if stop == "weights":
        save_model = C.save_model
        C.save_model = lambda *a, **k: (save_model(*a, **k), pause())
    elif stop == "both":
        C._swap_in = lambda new, folder: pause()
    elif stop == "rename":
        rename = os.rename
        def first_then_pause(src, dst):
            rename(src, dst)
            if ".old-" in str(dst):
                pause()
        C.os.rename = first_then_pause
    torch.manual_seed(99)
    C.save_checkpoint(Decoder(DecoderConfig(vocab_size=20, max_len=8, n_layers=1, n_heads=2, d_model=8)),
                      folder, metrics={"run": "new"})
    print("FINISHED", flush=True)
""")


@pytest.mark.parametrize("stop", ["weights", "both", "rename"])
def test_save_killed_midway_leaves_the_old_checkpoint_loadable(tmp_path, stop):
    folder = tmp_path / "ckpt"
    old = _decoder(0)
    save_checkpoint(old, folder, metrics={"run": "old"})
    (folder / "vocab.json").write_text("{}")  # a recipe's extra file
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(folder), stop], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        line = child.stdout.readline().strip()
        assert line == "PAUSED", f"the child did not reach the {stop!r} point: {line!r}"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert child.returncode == -signal.SIGKILL
    loaded = load_checkpoint(folder)  # "rename" leaves no folder in place: loading puts the old one back
    assert _same_weights(loaded, old)
    assert read_metrics(folder) == {"run": "old"}
    assert (folder / "vocab.json").read_text() == "{}"
    # the next save finishes the job and clears what the killed one left behind
    new = _decoder(5)
    save_checkpoint(new, folder, metrics={"run": "again"})
    assert _same_weights(load_checkpoint(folder), new)
    assert (folder / "vocab.json").read_text() == "{}", "files the save does not write are carried over"
    assert _hidden_siblings(folder) == []


def test_save_replaces_the_folder_and_leaves_nothing_behind(tmp_path):
    folder = tmp_path / "ckpt"
    save_checkpoint(_decoder(0), folder)
    new = _decoder(1)
    assert save_checkpoint(new, folder, metrics={"a": 1}) == folder / "model.safetensors"
    assert _same_weights(load_checkpoint(folder), new)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert _hidden_siblings(folder) == []


def test_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    """config.json cannot be written (a full disk, a read-only file system): the old checkpoint stays whole."""
    import lmbook.checkpointing as C

    folder = tmp_path / "ckpt"
    old = _decoder(0)
    save_checkpoint(old, folder, metrics={"run": "old"})

    def refuse(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(C.Path, "write_text", refuse)
    with pytest.raises(OSError, match=r"saving the checkpoint .*ckpt failed .*left as it was"):
        save_checkpoint(_decoder(1), folder, metrics={"run": "new"})
    monkeypatch.undo()
    assert _same_weights(load_checkpoint(folder), old)
    assert read_metrics(folder) == {"run": "old"}
    assert _hidden_siblings(folder) == []


def test_read_only_folder_is_refused_with_the_old_checkpoint_intact(tmp_path, monkeypatch):
    import lmbook.checkpointing as C

    folder = tmp_path / "ckpt"
    old = _decoder(0)
    save_checkpoint(old, folder)
    if os.geteuid() != 0:  # a real read-only folder; root writes anywhere, so it gets the same answer from access()
        folder.chmod(0o555)
    else:
        real_access = os.access
        monkeypatch.setattr(C.os, "access", lambda p, mode: False if Path(p) == folder else real_access(p, mode))
    try:
        with pytest.raises(PermissionError, match=r"ckpt: the folder is read-only"):
            save_checkpoint(_decoder(1), folder)
    finally:
        folder.chmod(0o755)
    assert _same_weights(load_checkpoint(folder), old)


def test_unwritable_parent_gives_a_clear_error(tmp_path, monkeypatch):
    import lmbook.checkpointing as C

    parent = tmp_path / "shelf"
    folder = parent / "ckpt"
    old = _decoder(0)
    save_checkpoint(old, folder)
    real_mkdir = C.Path.mkdir

    def refuse(self, *args, **kwargs):
        if self.parent == parent:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(C.Path, "mkdir", refuse)
    with pytest.raises(PermissionError, match=r"cannot save a checkpoint to .*ckpt: cannot write in .*shelf"):
        save_checkpoint(_decoder(1), folder)
    monkeypatch.undo()
    assert _same_weights(load_checkpoint(folder), old)


def test_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="not_a_folder: it exists and is not a folder"):
        save_checkpoint(_decoder(0), target)
    assert target.read_text() == "keep me"


def test_nan_weights_are_refused_on_save_and_on_load(tmp_path):
    folder = tmp_path / "ckpt"
    good = _decoder(0)
    save_checkpoint(good, folder)
    bad = _decoder(1)
    with torch.no_grad():
        bad.lm_head.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or infinite values in .*weight.*refusing to save"):
        save_checkpoint(bad, folder)
    assert _same_weights(load_checkpoint(folder), good)
    # a NaN written by another tool: loading names the tensor
    from safetensors.torch import save_model

    from lmbook.checkpointing import _WholeTensors

    save_model(_WholeTensors(bad), str(folder / "model.safetensors"), metadata={"format": "pt"},
               force_contiguous=True)
    with pytest.raises(ValueError, match=r"NaN or infinite values in tensor '.*weight'"):
        load_checkpoint(folder)


def test_stem_form_replaces_each_file(tmp_path):
    path = tmp_path / "run.safetensors"
    save_checkpoint(_decoder(0), path)
    new = _decoder(1)
    save_checkpoint(new, path, metrics={"a": 2})
    assert _same_weights(load_checkpoint(path), new)
    assert read_metrics(path) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.safetensors"]

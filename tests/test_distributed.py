"""Two processes on CPU (gloo, under torchrun) train like one process with the same global batch.

A tiny Decoder trains for ``STEPS`` steps on a global batch of 8 sequences, once in this process
and once as ``torchrun --nproc_per_node 2`` (each rank gets 4 of the 8 rows). The losses after each
step must agree within ``RTOL``: not exactly, because two processes add the same numbers in another
order (each rank averages 4 rows, then the ranks' gradients are averaged by an all-reduce, where one
process averages 8 rows at once), and float32 addition is not associative. Only rank 0 writes its checkpoint.

Run as a script (``python tests/test_distributed.py OUT``) it is one worker of that run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

STEPS, GLOBAL_BATCH, CONTEXT, VOCAB = 5, 8, 16, 50
RTOL = 1e-5  # measured: about 1e-7 (float32 rounding in a different order)


def _run(out: Path) -> dict:
    """Train the tiny Decoder in this process (one of torchrun's ranks, or alone); write and return its record."""
    from lmbook import distributed as D
    from lmbook.checkpointing import save_checkpoint
    from lmbook.models import Decoder, DecoderConfig
    from lmbook.pretraining import lm_batches, lm_loss
    from lmbook.training import train

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Decoder(DecoderConfig(vocab_size=VOCAB, max_len=CONTEXT, n_layers=2, n_heads=2, d_model=32, dropout=0.0))
    stream = torch.randint(VOCAB, (2_000,), generator=torch.Generator().manual_seed(1))
    batches = lm_batches(stream, batch_size=GLOBAL_BATCH, context=CONTEXT, seed=0)
    history = train(model, batches, lm_loss, steps=STEPS, lr=3e-3, warmup_steps=1, seed=0, progress=False,
                    device="cpu")  # fmt: skip
    save_checkpoint(model, out / f"rank{D.rank()}")
    record = {"losses": history.train_loss, "ms_per_step": history.ms_per_step, "world_size": D.world_size()}
    (out / f"record{D.rank()}.json").write_text(json.dumps(record))
    return record


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
    one = _run(tmp_path / "one")  # (tmp_path / "one" is created by save_checkpoint)
    two = tmp_path / "two"
    two.mkdir()
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    env.pop("WORLD_SIZE", None)
    env.pop("RANK", None)
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", env["MASTER_PORT"],
           __file__, str(two)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((two / f"record{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert one["world_size"] == 1
    assert ranks[0]["losses"] == ranks[1]["losses"]  # every rank logs the same mean over ranks
    assert len(one["losses"]) == STEPS
    for step, (a, b) in enumerate(zip(one["losses"], ranks[0]["losses"], strict=True), start=1):
        assert abs(a - b) <= RTOL * abs(a), f"step {step}: 1 process {a!r}, 2 processes {b!r}"
    assert one["losses"][-1] < one["losses"][0]  # it did learn something
    assert (two / "rank0" / "model.safetensors").is_file()
    assert not (two / "rank1").exists()  # one writer
    print("1 process :", one["losses"], f"{one['ms_per_step']:.1f} ms/step")
    print("2 processes:", ranks[0]["losses"], f"{ranks[0]['ms_per_step']:.1f} ms/step")


if __name__ == "__main__":
    _run(Path(sys.argv[1]))

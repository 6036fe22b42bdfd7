"""The feedback widgets (book: sec-feedback-live-loop): a replay that works in the static book, and the live loop.

* :class:`FeedbackReplay` (anywidget): steps through a recorded session of
  :class:`lmbook.interaction.FeedbackSession` - every reply, the 👍/👎 it got, the running
  reward - with no kernel behind it. :meth:`FeedbackReplay.running_reward` is the Python
  twin of the JavaScript ``runningMean``.
* :func:`live_feedback` (ipywidgets): the loop itself, for JupyterLab. Its buttons call
  Python, so it needs a running kernel; in the built HTML it would do nothing, which is why
  the chapter hides its output there and shows the replay.
"""

from __future__ import annotations

import torch
import traitlets as t

from lmbook.widgets.base import Explorer

__all__ = ["FeedbackReplay", "live_feedback"]


class FeedbackReplay(Explorer, js="feedback_replay.js"):
    """Replay of a recorded feedback session (``FeedbackSession.record(...)``), with step controls.

    Args:
        recording: ``{"prompt", "user", "lr", "beta", "steps": [{"step", "reply", "liked", "reward", "kl"}, ...]}``.
        window: rounds averaged in the running reward. step: the round shown first (1-based).
    """

    recording = t.Dict().tag(sync=True)
    window = t.Int(5).tag(sync=True)
    step = t.Int(1).tag(sync=True)

    def __init__(self, recording: dict, *, window: int = 5, step: int = 1) -> None:
        steps = recording.get("steps") if isinstance(recording, dict) else None
        if not steps:
            raise ValueError("recording must be a dict with a non-empty 'steps' list (from FeedbackSession.record)")
        for i, s in enumerate(steps):
            missing = {"reply", "liked", "reward", "kl"} - set(s)
            if missing:
                raise ValueError(f"recording['steps'][{i}] lacks {sorted(missing)}")
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        clean = {k: recording.get(k, "") for k in ("prompt", "user", "lr", "beta")}
        clean["steps"] = [{k: s[k] for k in ("step", "reply", "liked", "reward", "kl") if k in s} for s in steps]
        super().__init__(recording=clean, window=window, step=step)

    def running_reward(self) -> torch.Tensor:
        """Trailing mean of the last ``window`` rewards at every round (the plotted line)."""
        r = torch.tensor([s["reward"] for s in self.recording["steps"]], dtype=torch.float64)
        c = torch.cat([torch.zeros(1, dtype=r.dtype), r.cumsum(0)])
        i = torch.arange(1, len(r) + 1)
        lo = (i - self.window).clamp_min(0)
        return (c[i] - c[lo]) / (i - lo)


def live_feedback(session, window: int = 5):
    """An ipywidgets panel driving ``session`` (a ``FeedbackSession``): 👍 / 👎 buttons, the reply, a reward plot.

    Each click rates the shown reply, takes one training step, and generates the next reply
    from the updated model. Needs a live kernel (JupyterLab); returns the ``VBox``.
    """
    import ipywidgets as w
    import matplotlib.pyplot as plt

    reply = w.HTML()
    info = w.HTML()
    plot = w.Output()
    up, down = w.Button(description="👍"), w.Button(description="👎")

    def show_reply():
        reply.value = f"<span style='color:#6b7280'>{session.prompt}</span><b>{session.generate()}</b>"

    def redraw():
        rewards = [s["reward"] for s in session.history]
        with plot:
            plot.clear_output(wait=True)
            if rewards:
                fig, ax = plt.subplots(figsize=(5, 2))
                replay = FeedbackReplay({"steps": session.history}, window=window)
                ax.plot(range(1, len(rewards) + 1), replay.running_reward(), label=f"mean of last {window}")
                ax.plot(range(1, len(rewards) + 1), rewards, ".", alpha=0.5, label="your ratings")
                ax.set(xlabel="round", ylabel="reward", ylim=(-0.05, 1.05))
                ax.legend(fontsize=8)
                plt.show()
        last = session.history[-1] if session.history else None
        info.value = "" if last is None else (f"round {last['step']}: KL to the original model "
                                              f"{last['kl']:.4f} nats/token")  # fmt: skip

    def rate(liked: bool):
        session.feedback(liked)
        redraw()
        show_reply()

    up.on_click(lambda _: rate(True))
    down.on_click(lambda _: rate(False))
    show_reply()
    redraw()
    return w.VBox([reply, w.HBox([up, down]), info, plot])

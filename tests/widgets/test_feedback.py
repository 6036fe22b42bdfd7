"""The feedback replay's JavaScript running reward equals its Python twin; the live panel wires a session."""

import pytest
import torch
from jsrun import run_js

from lmbook.widgets.feedback import FeedbackReplay, live_feedback


def _recording(rewards):
    return {"prompt": "The", "user": "likes music", "lr": 1e-3, "beta": 0.1,
            "steps": [{"step": i + 1, "reply": f" r{i}", "liked": r > 0, "reward": r, "kl": 0.01 * i}
                      for i, r in enumerate(rewards)]}


@pytest.mark.parametrize("window", [1, 3, 5])
def test_js_running_mean_equals_python(window):
    rewards = [0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1]
    replay = FeedbackReplay(_recording(rewards), window=window)
    js = run_js("feedback_replay.js", "runningMean", rewards, window)
    torch.testing.assert_close(torch.tensor(js, dtype=torch.float64), replay.running_reward(), atol=1e-12, rtol=0)


def test_running_mean_by_hand():
    replay = FeedbackReplay(_recording([0, 1, 1, 1]), window=2)
    assert replay.running_reward().tolist() == [0.0, 0.5, 1.0, 1.0]


def test_js_rejects_bad_window():
    with pytest.raises(RuntimeError, match="window must be an integer >= 1"):
        run_js("feedback_replay.js", "runningMean", [1, 0], 0)


def test_replay_validates_the_recording():
    with pytest.raises(ValueError, match="non-empty 'steps'"):
        FeedbackReplay({"steps": []})
    with pytest.raises(ValueError, match="lacks \\['kl'\\]"):
        FeedbackReplay({"steps": [{"reply": "x", "liked": True, "reward": 1.0}]})


def test_replay_keeps_only_what_it_shows():
    rec = _recording([1, 0])
    rec["steps"][0]["secret"] = "not sent to the page"
    replay = FeedbackReplay(rec)
    assert "secret" not in replay.recording["steps"][0] and replay.recording["user"] == "likes music"


class _FakeSession:
    prompt = "The"

    def __init__(self):
        self.history, self.calls = [], []

    def generate(self):
        self.calls.append("generate")
        return f" reply {len(self.calls)}"

    def feedback(self, liked):
        self.calls.append(liked)
        self.history.append({"step": len(self.history) + 1, "reply": "x", "liked": liked,
                             "reward": float(liked), "kl": 0.0})


def test_live_panel_buttons_rate_and_regenerate():
    session = _FakeSession()
    panel = live_feedback(session)
    up, down = panel.children[1].children
    up.click()
    down.click()
    assert session.calls == ["generate", True, "generate", False, "generate"]
    assert "round 2" in panel.children[2].value

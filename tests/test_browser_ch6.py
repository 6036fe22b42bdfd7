"""Browser tests of Chapter 6: the sampling explorer (6a) and the feedback replay (6c) in the built book, offline.

They open the built pages with every outside request blocked, move the controls, and check
that the explorers redraw with no kernel behind them. They need Debian's chromium and a built
book (``make book``); without them they skip, except under ``CI=true``.
"""

import pytest
from browser import OfflinePage

pytestmark = pytest.mark.browser


def _set_range(page, selector: str, value) -> None:
    """Move a range slider the way a drag does: set its value and fire ``input``."""
    page.locator(selector).evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); }", str(value))


@pytest.fixture
def prompting(browser, server):
    p = OfflinePage(browser, server, "notebooks/06a_prompting.html")
    p.page.wait_for_selector(".lmb-samp .bars .bar", timeout=20_000)
    yield p
    p.close()


@pytest.fixture
def feedback(browser, server):
    p = OfflinePage(browser, server, "notebooks/06c_feedback.html")
    p.page.wait_for_selector(".lmb-fb .reply", timeout=20_000)
    yield p
    p.close()


def _kept(page) -> int:
    return int(page.locator(".lmb-samp .n-kept").inner_text())


def _probs(page) -> list[str]:
    return page.locator(".lmb-samp .bars .bar").evaluate_all("bars => bars.map(b => b.dataset.p)")


def test_sampling_explorer_draws_offline_and_cleanly(prompting):
    page = prompting.page
    assert page.locator(".lmb-samp .bars .bar").count() >= 10
    assert page.locator(".lmb-samp select.prompt option").count() == 3
    prompting.page.wait_for_timeout(300)
    prompting.assert_clean()


def test_top_p_and_top_k_change_the_kept_set(prompting):
    page = prompting.page
    start = _kept(page)
    _set_range(page, ".lmb-samp input.top-p", 0.3)
    smaller = _kept(page)
    assert smaller < start, "lowering top-p must keep fewer tokens"
    assert page.locator(".lmb-samp .top-p-value").inner_text() == "p = 0.30"
    _set_range(page, ".lmb-samp input.top-p", 1)
    _set_range(page, ".lmb-samp input.top-k", 3)
    assert _kept(page) == 3
    kept_bars = page.locator(".lmb-samp .bars .bar[data-kept='1']").count()
    assert kept_bars == 3, "exactly the three most likely tokens are drawn as kept"
    prompting.assert_clean()


def test_temperature_reshapes_the_distribution(prompting):
    page = prompting.page
    before = _probs(page)
    entropy_before = float(page.locator(".lmb-samp .entropy").inner_text())
    _set_range(page, ".lmb-samp input.top-p", 1)
    _set_range(page, ".lmb-samp input.temperature", 1.5)  # log2 T: T = 2.83
    assert _probs(page) != before
    assert float(page.locator(".lmb-samp .entropy").inner_text()) > entropy_before
    assert page.locator(".lmb-samp .temperature-value").inner_text() == "T = 2.83"
    page.locator(".lmb-samp select.prompt").select_option("0")
    assert "France" in page.locator(".lmb-samp .prompt-text").inner_text()


def test_replay_steps_through_the_recorded_session(feedback):
    page = feedback.page
    label = page.locator(".lmb-fb .step-value")
    assert label.inner_text().startswith("round 1 of ")
    n = int(label.inner_text().split(" of ")[1])
    assert n >= 10

    def shown():
        return page.locator(".lmb-fb polyline.shown").get_attribute("points").split()

    assert len(shown()) == 1
    page.locator(".lmb-fb button.next").click()
    assert label.inner_text() == f"round 2 of {n}" and len(shown()) == 2
    _set_range(page, ".lmb-fb input.step", n)
    assert label.inner_text() == f"round {n} of {n}" and len(shown()) == n
    likes = int(page.locator(".lmb-fb .likes").inner_text())
    assert 0 < likes <= n
    assert page.locator(".lmb-fb .verdict").inner_text() in ("👍", "👎")
    page.locator(".lmb-fb button.first").click()
    assert label.inner_text() == f"round 1 of {n}"
    feedback.assert_clean()


def test_replay_play_button_advances(feedback):
    page = feedback.page
    page.locator(".lmb-fb button.play").click()
    page.wait_for_function("document.querySelector('.lmb-fb .step-value').textContent.startsWith('round 3')",
                           timeout=5_000)
    page.locator(".lmb-fb button.play").click()  # pause
    feedback.assert_clean()


def test_live_widget_output_is_hidden_in_the_static_page(feedback):
    # The live 👍/👎 panel needs a kernel; the page shows the replay and says how to run it live.
    assert feedback.page.locator(".widget-button").count() == 0
    assert "make lab" in feedback.page.locator("main").inner_text()


# ------------------------------------------------------------------ 6a: the live generator (issue 16)


@pytest.fixture
def generator(browser, server):
    p = OfflinePage(browser, server, "notebooks/06a_prompting.html")
    p.page.wait_for_selector(".lmb-gen .dist .bar", timeout=30_000)
    yield p
    p.close()


def _type_prompt(page, text: str) -> float:
    """Put ``text`` in the prompt box as a keystroke would; returns the ms until the page has redrawn."""
    return page.locator(".lmb-gen input.prompt").evaluate(
        """(el, text) => { const t0 = performance.now(); el.value = text;
        el.dispatchEvent(new Event("input", { bubbles: true })); return performance.now() - t0; }""", text)


def _gen_probs(page) -> list[str]:
    return page.locator(".lmb-gen .dist .bar").evaluate_all("bars => bars.map(b => b.dataset.p)")


def test_live_generator_continues_a_typed_prompt_like_python(generator):
    """Greedy, the page continues the prompt with the text Python generated at build time (glued into the prose)."""
    page = generator.page
    page.locator(".lmb-gen input.greedy").check()
    prose = page.locator("p", has_text="Try it: tick").inner_text()
    prompt = prose.split("type ", 1)[1].split(". The page should", 1)[0].strip()
    assert prompt == "The river flows through the"
    ms = _type_prompt(page, prompt)
    continuation = " ".join(page.locator(".lmb-gen .text").get_attribute("data-continuation").split())
    print(f"built page: keystroke to {page.locator('.lmb-gen .text .token').count()} tokens drawn in {ms:.0f} ms")
    assert len(continuation) > 20
    assert continuation in " ".join(prose.split()), (continuation, prose)
    assert page.locator(".lmb-gen .temperature-value").inner_text() == "greedy"
    generator.assert_clean()


def test_live_generator_temperature_changes_the_distribution(generator):
    page = generator.page
    page.locator(".lmb-gen input.greedy").uncheck()
    before = _gen_probs(page)
    _set_range(page, ".lmb-gen input.temperature", 1.8)
    after = _gen_probs(page)
    assert after != before, "moving the temperature slider did not change the distribution"
    assert float(after[0]) < float(before[0]), "a higher temperature flattens: the top candidate loses probability"
    assert page.locator(".lmb-gen .temperature-value").inner_text() == "T = 1.80"
    page.locator(".lmb-gen .text .token").nth(4).click()
    assert page.locator(".lmb-gen .text .token.selected").get_attribute("data-step") == "4"
    assert page.locator(".lmb-gen .step-title").inner_text().startswith("Step 5")
    generator.assert_clean()


def test_live_generator_first_token_time_for_32_tokens(generator):
    """Prints the time from a keystroke to the first generated token for a 32-token prompt (no timed assert)."""
    page = generator.page
    page.locator(".lmb-gen input.greedy").check()
    text = ("The history of the city began when the river was first crossed by a bridge, and trade grew very fast "
            "along it.")  # 31 tokens, 32 with <bos>
    ms = [_type_prompt(page, text + " " * (i % 2)) for i in range(5)]
    status = page.locator(".lmb-gen .status").inner_text()
    assert status.startswith("32 prompt tokens"), status
    print(f"built page, 32-token prompt: keystroke to redraw {sorted(ms)[2]:.0f} ms (median of 5); {status}")
    generator.assert_clean()

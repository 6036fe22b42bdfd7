"""Shared test settings: one torch thread and a fixed seed, so results repeat."""

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def server():
    """URL of the built book (``_build/html``) served on 127.0.0.1."""
    from browser import serve_book

    yield from serve_book()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium, driven by Playwright."""
    from browser import launch_browser

    yield from launch_browser()

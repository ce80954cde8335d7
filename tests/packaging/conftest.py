"""Packaging tests: a private home for every program they start, and the repository root."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(tmp_path):
    """The environment for a started program: offscreen Qt, settings, logs and data under
    tmp_path (never the person's own), the window's smoke mode on."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HASHLENS_", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_STATE_HOME=str(home / ".local/state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        QT_QPA_PLATFORM="offscreen",
        HASHLENS_SMOKE_TEST="1",
    )
    return env

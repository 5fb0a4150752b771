"""Test-wide settings: the command line's cache of finished verdicts lives in a fresh folder per test."""

import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Point ATTNSCALE_CACHE (read by the cli package, inherited by subprocesses) at this test's own folder."""
    monkeypatch.setenv("ATTNSCALE_CACHE", str(tmp_path / "attnscale-cache"))

"""The allocator policies of kraken run and kraken train (engine/_malloc): set once, never over the user's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kraken_cli.engine import _malloc

glibc = pytest.mark.skipif(_malloc._mallopt() is None, reason="needs glibc's mallopt")


@pytest.fixture
def fresh(monkeypatch):
    """A process state where no policy is set yet, with mallopt recorded instead of called."""
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(_malloc, "_done", None)
    monkeypatch.setattr(_malloc, "_mallopt", lambda: lambda p, v: calls.append((p, v)) or 1)
    for name in _malloc._ENV:
        monkeypatch.delenv(name, raising=False)
    return calls


def test_train_sets_both_thresholds_once(fresh):
    assert _malloc.keep_freed_buffers()
    assert sorted(fresh) == sorted([(_malloc._M_MMAP_THRESHOLD, _malloc.TRAIN_MMAP_THRESHOLD),
                                    (_malloc._M_TRIM_THRESHOLD, _malloc.TRIM_THRESHOLD)])
    assert _malloc.keep_freed_buffers()
    assert len(fresh) == 2  # once per process


def test_the_first_policy_stays(fresh):
    assert _malloc.map_big_blocks()
    assert not _malloc.keep_freed_buffers()
    assert fresh == [(_malloc._M_MMAP_THRESHOLD, _malloc.MMAP_THRESHOLD)]


@pytest.mark.parametrize("name", _malloc._ENV)
def test_a_user_setting_wins(fresh, monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert not _malloc.keep_freed_buffers()
    assert not _malloc.map_big_blocks()
    assert fresh == []


@glibc
def test_real_mallopt_accepts_the_settings():
    code = ("from kraken_cli.engine import _malloc as m; import sys; "
            "sys.exit(0 if m.keep_freed_buffers() and m.keep_freed_buffers() and not m.map_big_blocks() else 1)")
    env = {k: v for k, v in __import__("os").environ.items() if k not in _malloc._ENV}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0

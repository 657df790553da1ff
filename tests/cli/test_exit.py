"""The console entry point: after any command (success, error or usage error), the collector's objects are
frozen so that interpreter exit does not walk them (0.4-0.5 s of every command that imported torch)."""

from __future__ import annotations

import gc

import pytest

from kraken_cli.cli import app as app_module


@pytest.mark.parametrize("code", [0, 1, 2])
def test_main_freezes_the_collector_on_every_exit(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    frozen = []

    def command() -> None:
        raise SystemExit(code)

    monkeypatch.setattr(app_module, "app", command)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr("signal.signal", lambda *a: None)  # main() installs its SIGTERM handler
    with pytest.raises(SystemExit) as exc:
        app_module.main()
    assert exc.value.code == code and frozen == [True]

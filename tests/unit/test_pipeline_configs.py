"""engine.pipelines.configs: the run/adapt configs, importable without torch, and their defaults."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import pytest

from kraken_cli.engine.errors import SpecError
from kraken_cli.engine.pipelines.configs import AdaptConfig, PredictConfig, PredictOptions, field_defaults


def test_field_defaults_first_class_wins_and_skips_required_fields() -> None:
    @dataclass
    class A:
        required: int
        shared: str = "a"

    @dataclass
    class B:
        shared: str = "b"
        only_b: float = 1.5

    assert field_defaults(A, B) == {"shared": "a", "only_b": 1.5}
    assert field_defaults(B, A) == {"shared": "b", "only_b": 1.5}


def test_defaults_match_a_config_built_without_options() -> None:
    built = PredictConfig(inputs=("x=y.mat",))
    defaults = field_defaults(PredictConfig, PredictOptions)
    assert defaults["demean"] == built.demean and defaults["chunk_size"] == built.options.chunk_size
    assert field_defaults(AdaptConfig)["mode"] == AdaptConfig(inputs=(), output="a.json").mode


def test_config_checks_options_before_any_input_is_read() -> None:
    with pytest.raises(SpecError, match="--split needs --split-file"):
        PredictConfig(inputs=("x=y.mat",), split="test")


def test_importing_the_configs_does_not_load_torch() -> None:
    code = ("import sys, kraken_cli.engine.pipelines.configs, kraken_cli.cli.run, kraken_cli.cli.adapt; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"

"""Errors kraken raises on purpose: each carries a message and a hint for the user.

The tree::

    KrakenError                  exit code 1 unless noted
    ├── InputDataError           connectome files: unreadable, wrong shape, NaN, subjects disagree
    ├── FlavorError              unknown / unmatched flavor names, empty fusion groups
    ├── SpecError                malformed user specs such as FLAVOR=PATH (exit code 2, a usage error)
    ├── CheckpointError          .pt files: unreadable, crafted, incompatible
    ├── TransformError           *_ioxfm_* files and transform fitting
    │   └── KrakenNotFittedError  (also a ValueError) transform used before fit
    ├── AdapterError             adapter files fitted for another transform
    ├── OutputError              unwritable folders, files too large for the format
    ├── FetchError               registry look-ups and downloads
    ├── DeviceError              --device cuda without CUDA
    └── TrainingError            training runs that cannot proceed
        └── TrainingInterrupted  SIGINT/SIGTERM: the last epoch was checkpointed (exit code 130)
"""

from __future__ import annotations

#: Longest message or hint kept: a crafted file's names or ids must not make an error of megabytes.
MAX_MESSAGE_CHARS = 1000


def shorten(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out.

    >>> shorten("abcdef", 4)
    'abcd… (2 more characters)'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def check_choice(value: str, choices: tuple[str, ...] | frozenset[str] | list[str], *, option: str,
                 hint: str) -> str:
    """``value`` when it is one of ``choices``, else a usage error (:class:`SpecError`) naming ``option``."""
    if value not in choices:
        raise SpecError(f"unknown {option} {value!r}", hint=hint)
    return value


class KrakenError(Exception):
    """Base class: a user-fixable problem, with a message and an optional hint (both kept short)."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = shorten(str(message))
        super().__init__(message)
        self.message = message
        self.hint = None if hint is None else shorten(str(hint))

    def __str__(self) -> str:
        return self.message


class InputDataError(KrakenError):
    """A connectome input cannot be used as given."""


class FlavorError(KrakenError):
    """A flavor name is unknown, ambiguous or absent from the model."""


class SpecError(KrakenError):
    """A user-written spec (``FLAVOR[@GROUP]=PATH``, ``NAME=SEL``...) is malformed: a usage error."""

    exit_code = 2


class CheckpointError(KrakenError):
    """A checkpoint cannot be loaded, is unsafe, or does not fit with another."""


class TransformError(KrakenError):
    """An input transform cannot be read, fitted or applied."""


class KrakenNotFittedError(TransformError, ValueError):
    """A transform was used before ``fit``."""


class AdapterError(KrakenError):
    """A domain-adaptation file does not fit the transform or data."""


class OutputError(KrakenError):
    """An output cannot be written where or how it was asked."""


class FetchError(KrakenError):
    """A registry file cannot be found, downloaded or verified."""


class DeviceError(KrakenError):
    """The requested compute device is not available."""


class TrainingError(KrakenError):
    """Training cannot start or continue."""


class TrainingInterrupted(TrainingError):
    """Ctrl-C or SIGTERM stopped a run after it checkpointed its last completed epoch."""

    exit_code = 130

    def __init__(self, message: str, *, hint: str | None = None, checkpoint: str | None = None,
                 completed_epochs: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.checkpoint = checkpoint
        self.completed_epochs = completed_epochs


__all__ = [
    "AdapterError",
    "CheckpointError",
    "DeviceError",
    "FetchError",
    "FlavorError",
    "InputDataError",
    "KrakenError",
    "KrakenNotFittedError",
    "OutputError",
    "SpecError",
    "TrainingError",
    "TrainingInterrupted",
    "TransformError",
]

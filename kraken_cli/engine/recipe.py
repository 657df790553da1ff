"""The ``--loss`` recipe: term names, default weights and the parser (no torch needed).

A recipe is a ``+``-separated list of ``name[.wWEIGHT]`` (UPSTREAM 6.1), e.g. the paper's
``correye+enceye.w10+neidist+encdist.w10+mse.w1000+latentsimloss.w10000``. Unlike the original,
a recipe means exactly what it says (DESIGN 5): no ``mse`` or ``latentsimloss`` term is added
behind the user's back. A term written without ``.w`` gets its group's default weight. The
terms themselves are computed in :mod:`.losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .errors import SpecError

TermKind = Literal["output", "latent", "meta"]

#: Output-space terms (default weight 1).
OUTPUT_LOSSES: tuple[str, ...] = ("mse", "msesum", "corrtrace", "correye", "corrmatch", "dist", "neidist", "var")
#: Latent-space terms computed per batch (default weight 10, the original's --latentinnerweight).
LATENT_LOSSES: tuple[str, ...] = ("enceye", "encdist", "encneidist", "encdot", "encneidot")
#: Latent "meta" terms with their own default weights (the original's CLI defaults).
META_LOSSES: dict[str, float] = {"latentsimloss": 5000.0, "latentnormloss": 1.0, "latentmaxradloss": 10.0}

DEFAULT_OUTPUT_WEIGHT = 1.0
DEFAULT_LATENT_WEIGHT = 10.0

#: The paper's recipe (UPSTREAM 6.4).
PAPER_RECIPE = "correye+enceye.w10+neidist+encdist.w10+mse.w1000+latentsimloss.w10000"



@dataclass(frozen=True, slots=True)
class LossTerm:
    """One named term of a recipe with its effective weight."""

    name: str
    weight: float
    kind: TermKind

    def __str__(self) -> str:
        return self.name if self.weight == 1 else f"{self.name}.w{self.weight:g}"


@dataclass(frozen=True, slots=True)
class LossRecipe:
    """A parsed loss recipe: the terms in the order written, each with its effective weight."""

    terms: tuple[LossTerm, ...]

    @property
    def output_terms(self) -> tuple[LossTerm, ...]:
        return tuple(t for t in self.terms if t.kind == "output" and t.weight != 0)

    @property
    def latent_terms(self) -> tuple[LossTerm, ...]:
        """Per-batch latent terms, including ``latentnormloss``/``latentmaxradloss``."""
        return tuple(t for t in self.terms if t.weight != 0 and (
            t.kind == "latent" or t.name in ("latentnormloss", "latentmaxradloss")))

    def weight(self, name: str) -> float:
        """Effective weight of ``name`` (0 when the recipe does not name it)."""
        for t in self.terms:
            if t.name == name:
                return t.weight
        return 0.0

    @property
    def latentsim_weight(self) -> float:
        return self.weight("latentsimloss")

    def as_dict(self) -> dict[str, float]:
        """``{name: effective weight}``, for training records."""
        return {t.name: t.weight for t in self.terms}

    def __str__(self) -> str:
        """Canonical form as the original writes it in file names (zero weights omitted)."""
        return "+".join(str(t) for t in self.terms if t.weight != 0)


def valid_loss_names() -> list[str]:
    """Every term name a recipe may use."""
    return [*OUTPUT_LOSSES, *LATENT_LOSSES, *META_LOSSES]


def parse_recipe(text: str) -> LossRecipe:
    """Parse a loss recipe such as ``"correye+enceye.w10+mse.w1000"``.

    Parameters
    ----------
    text : str
        ``+``-separated ``name[.wWEIGHT]`` items. A trailing ``B`` on a name (the original's
        ``latentsimlossB``) is accepted and ignored.

    Returns
    -------
    LossRecipe

    Raises
    ------
    SpecError
        Unknown names (the message lists the valid ones), malformed or negative weights,
        empty items, or a term named twice.

    Examples
    --------
    >>> r = parse_recipe("correye+enceye+mse.w1000")
    >>> r.as_dict()
    {'correye': 1.0, 'enceye': 10.0, 'mse': 1000.0}
    """
    if not text or not text.strip():
        raise SpecError("empty loss recipe", hint=f"for example --loss {PAPER_RECIPE}")
    terms: list[LossTerm] = []
    seen: set[str] = set()
    for item in text.strip().split("+"):
        item = item.strip()
        if not item:
            raise SpecError(f"empty term in loss recipe {text!r}", hint="terms are joined by single '+'")
        name, sep, wtext = item.partition(".w")
        if name.endswith("B") and name[:-1] in valid_loss_names():
            name = name[:-1]
        kind = _kind(name)
        if kind is None:
            raise SpecError(f"unknown loss term {name!r} in {text!r}",
                            hint="valid names: " + ", ".join(valid_loss_names()))
        if sep:
            try:
                weight = float(wtext)
            except ValueError:
                raise SpecError(f"bad weight {wtext!r} for loss term {name!r}",
                                hint="write weights like mse.w1000 or enceye.w0.5") from None
            if not math.isfinite(weight) or weight < 0:
                raise SpecError(f"loss weight for {name!r} must be a finite number >= 0, got {wtext!r}")
        else:
            weight = _default_weight(name, kind)
        if name in seen:
            raise SpecError(f"loss term {name!r} appears twice in {text!r}", hint="give each term once")
        seen.add(name)
        terms.append(LossTerm(name, weight, kind))
    return LossRecipe(tuple(terms))


def _kind(name: str) -> TermKind | None:
    if name in OUTPUT_LOSSES:
        return "output"
    if name in LATENT_LOSSES:
        return "latent"
    if name in META_LOSSES:
        return "meta"
    return None


def _default_weight(name: str, kind: TermKind) -> float:
    if kind == "output":
        return DEFAULT_OUTPUT_WEIGHT
    if kind == "latent":
        return DEFAULT_LATENT_WEIGHT
    return META_LOSSES[name]

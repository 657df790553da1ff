"""kraken: translate brain connectomes between flavors with Krakencoder models."""

from __future__ import annotations

__version__ = "0.1.0"

"""Training: data splits, the trainer, training records, resume and distributed support."""

from __future__ import annotations

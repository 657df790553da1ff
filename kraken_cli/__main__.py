"""``python -m kraken_cli`` (also what ``torchrun -m kraken_cli train ...`` runs)."""

from __future__ import annotations

from kraken_cli.cli.app import main

if __name__ == "__main__":
    main()

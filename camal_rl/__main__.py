"""``python -m camal_rl`` runs the ``camal-rl`` console script."""

from camal_rl.cli import main

raise SystemExit(main())

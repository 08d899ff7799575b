"""``python -m conv3t`` runs the command-line interface."""

from conv3t.cli import main

raise SystemExit(main())

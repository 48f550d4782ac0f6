"""`python -m lspguard` is the management CLI."""

from .cli import main

raise SystemExit(main())

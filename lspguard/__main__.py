"""`python -m lspguard` is the management CLI."""

from lspguard.cli.main import main

raise SystemExit(main())

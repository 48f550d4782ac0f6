"""lspguard: a supervising stdio proxy for language servers, built first for gopls.

The sub-packages form layers; a module imports from its own package, from the modules here at
the top (errors, paths, logs, redact, argtypes: no lspguard imports of their own beyond each
other), and from lower layers only, never upward and never sideways within a layer.
tests/unit/test_layout.py enforces it, counting lazy and type-only imports. From the bottom:

1. protocol (LSP framing, codes), config, status (the status document's contract), procfs (what
   /proc and the mount table say), trace (the recorded-session format), gopls (finding the real
   gopls, telling a shim from it)
2. causes: what a process waits on and why (the verdicts, their kinds and policy)
3. proxy: the relay between the editor and one server generation (pipes, backend, pre-relay)
4. supervise (the watchdog, recovery, the waits on outside causes), incident (bundles, reports)
5. control: the per-session control socket
6. session: the composition root that builds one guarded session from all of the above
7. shim, demo, doctor, replay: the commands
8. cli: `lspguard`, which dispatches to every command
"""

from __future__ import annotations

__all__ = ["__version__"]

# Static, and the single source of the version (pyproject reads it): importlib.metadata would
# cost every `gopls version` through the shim ~50 ms and the proxy ~2 MB.
__version__ = "0.1.0"

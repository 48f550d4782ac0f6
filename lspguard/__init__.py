"""lspguard: a supervising stdio proxy for language servers, built first for gopls."""

from __future__ import annotations

__all__ = ["__version__"]

# Static, and the single source of the version (pyproject reads it): importlib.metadata would
# cost every `gopls version` through the shim ~50 ms and the proxy ~2 MB.
__version__ = "0.1.0"

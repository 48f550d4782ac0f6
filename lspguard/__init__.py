"""lspguard: a supervising stdio proxy for language servers, built first for gopls."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: importlib.metadata costs ~50 ms, and the gopls shim's `version` path must stay fast.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            value = version("lspguard")
        except PackageNotFoundError:  # a source tree without an install
            value = "0.0.0+unknown"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module 'lspguard' has no attribute {name!r}")

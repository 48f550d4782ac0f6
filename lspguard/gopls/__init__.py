"""The real gopls: finding it, and telling it from an lspguard shim (low layer: standard library
and lspguard.errors only)."""

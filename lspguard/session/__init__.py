"""The composition root: one guarded session built from the layers below (proxy, supervise,
incident, control, status), and the entry point that runs it (run.py)."""

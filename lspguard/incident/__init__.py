"""Incident evidence: a bundle directory per verdict (or on demand) and its report.html.

    write_bundle(IncidentContext) -> Path     bundle.py: collectors under one budget, atomic dir
    snapshot_now(IncidentContext) -> Path|None  the same, for hooks that must never raise
    render_report(bundle_dir) -> Path         report.py: the self-contained page
    list_bundles() / prune_bundles()          bundle.py
    Evidence                                  evidence.py: what a session hands to a bundle

Nothing is imported here: `lspguard.incident.cli` is imported whenever the CLI starts, and must
not pull in psutil, pygal or anyio for `lspguard --help`.
"""

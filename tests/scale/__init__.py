"""Real-size Go workspaces for judging lspguard against bare gopls (issue 16).

    workspace  builds and caches the fixtures (`python -m tests.scale.workspace --ensure`)
    compare    one scripted editor session, run against bare gopls and through lspguard
"""

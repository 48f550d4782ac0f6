"""The proxy's own process name: never `gopls`, always what it is doing.

The shim is an executable named `gopls`, so without this the proxy would be a process named
`gopls` too: `pgrep gopls` would list it, `pkill -STOP gopls` would stop the guard along with
the server it guards. In LSP mode the proxy therefore renames itself at once:

* comm (`/proc/PID/comm`: what `pgrep`, `pkill`, `top` and `ps -o comm` match) becomes
  `lspguard`;
* the command line (`ps aux`, `pgrep -f`) reads `lspguard: guarding gopls pid 1234
  (generation 2)`, kept current by `guarding` each time a new backend generation starts.

Standard library only at import time (the shim imports this before anything heavy); the
`setproctitle` package is imported on the first title. Every function is a no-op where the
platform cannot do it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["COMM", "guarding", "server_name", "set_comm", "set_title", "starting", "title"]

#: The process name (comm) of a proxy. At most 15 bytes: the kernel keeps no more.
COMM = "lspguard"

_title: str | None = None


def set_comm(name: str = COMM) -> None:
    """Name the process `name` (comm), from any thread: /proc/self/comm is the main thread's."""
    data = name.encode()[:15]
    try:
        with open("/proc/self/comm", "wb", buffering=0) as f:
            f.write(data)
        return
    except OSError:
        pass
    if not sys.platform.startswith("linux"):
        return
    import threading

    if threading.current_thread() is threading.main_thread():  # prctl names the calling thread
        import ctypes

        pr_set_name = 15
        prctl = getattr(ctypes.CDLL(None), "prctl", None)
        if prctl is not None:
            prctl(pr_set_name, ctypes.c_char_p(data), 0, 0, 0)


def set_title(text: str) -> None:
    """Make `text` the process's command line, and keep its comm `lspguard`."""
    global _title
    set_comm()  # first: the cheapest part, and the one `pkill gopls` matches
    _title = text
    try:
        from setproctitle import getthreadtitle, setproctitle, setthreadtitle
    except ImportError:  # pragma: no cover - a dependency; comm alone still tells us apart
        return
    thread = getthreadtitle()
    setproctitle(text)  # on Linux this also renames the calling thread: undo that
    if thread:
        setthreadtitle(thread)
    set_comm()


def title() -> str | None:
    """The last title set in this process, or None."""
    return _title


def server_name(argv: list[str]) -> str:
    """"gopls" for gopls, else the program's name (a Python server: its script's)."""
    if not argv:
        return "the language server"
    name = os.path.basename(argv[0])
    if "gopls" in name:
        return "gopls"
    if name.startswith("python") and len(argv) > 1:
        return os.path.basename(argv[1])
    return name


def starting(server_name: str) -> None:
    """The title before the first backend has a pid."""
    set_title(f"lspguard: starting {server_name}")


def guarding(server_name: str, pid: int | None, generation: int) -> None:
    """The title while backend generation `generation` (process `pid`) is current."""
    set_title(f"lspguard: guarding {server_name} pid {pid if pid is not None else '?'} "
              f"(generation {generation})")

"""`lspguard install-shim DIR`: put a `gopls` in DIR that runs gopls under lspguard.

Two kinds, one behaviour (shim/main.py):
- native (the default where Go is found): launcher/*.go built with the user's toolchain
  (native.py). VS Code Go's `go version -m` check passes, and only an LSP session starts Python;
- script (the fallback): a Python script with the marker line. Everything works, but VS Code Go
  cannot read Go build info from a script and warns "Tools (gopls) need recompiling" at every
  start; `lspguard doctor` says so.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lspguard.gopls.identity import SCRIPT_WARNING, SHIM_MARKER, is_shim

__all__ = ["SCRIPT_WARNING", "InstalledShim", "install_shim", "install_shim_report",
           "script_text"]

_UNSAFE_IN_SHEBANG = re.compile(r"\s")



@dataclass(frozen=True)
class InstalledShim:
    path: Path
    kind: str  # "native" or "script"
    why_script: str = ""  # why the native shim was not built (when kind is "script")


def _shebang(python: str) -> str:
    """The interpreter line(s).  Linux splits `#!` lines at whitespace and truncates them
    (128 bytes on older kernels), so odd interpreter paths go through /bin/sh instead."""
    if len(python) < 120 and not _UNSAFE_IN_SHEBANG.search(python):
        return f"#!{python}\n"
    if any(c in python for c in "'\\\n\r"):
        raise ValueError(f"cannot write a shim for a Python interpreter at {python!r}")
    # Valid as sh (exec python on this file) and as Python (a string-literal statement).
    return f"#!/bin/sh\n'exec' '{python}' \"$0\" \"$@\"\n"


def script_text(config: Path | None) -> str:
    """The script shim: this Python, the marker line, and shim.main.main."""
    source_root = str(Path(__file__).resolve().parents[2])  # the dir holding lspguard/
    lines = [
        _shebang(os.path.abspath(sys.executable)).rstrip("\n"),
        SHIM_MARKER,
        '"""gopls shim written by lspguard (`lspguard install-shim`); do not edit.',
        "",
        "LSP sessions run under the lspguard proxy; every other gopls command is exec'd on the",
        'real gopls unchanged.  Remove this file to stop using lspguard."""',
        "import os",
        "import sys",
    ]
    if config is not None:
        lines.append(f"os.environ.setdefault('LSPGUARD_CONFIG', {str(config)!r})")
    lines += [
        f"if {source_root!r} not in sys.path:",
        f"    sys.path.append({source_root!r})  # found only if lspguard is not installed",
        "from lspguard.shim.main import main",
        "raise SystemExit(main())",
        "",
    ]
    return "\n".join(lines)


def _write_atomically(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".gopls.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o755)  # explicit: not subject to the umask
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def install_shim_report(directory: Path, *, config: Path | None = None, force: bool = False,
                        script: bool = False) -> InstalledShim:
    """Write an executable `directory/gopls` shim (0755, atomically) and say which kind.

    Native unless `script` or no Go toolchain can build it. With `config`, the shim pins
    LSPGUARD_CONFIG unless the environment already sets it. An existing shim is replaced; any
    other existing file (the real gopls, say) raises FileExistsError unless `force`.
    """
    directory = Path(os.path.abspath(os.path.expanduser(directory)))
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "gopls"
    if (target.exists() or target.is_symlink()) and not force and not is_shim(target):
        raise FileExistsError(
            f"{target} exists and is not an lspguard shim (is it the real gopls?); choose another "
            "directory or pass --force to overwrite it"
        )
    if config is not None:
        config = Path(os.path.abspath(os.path.expanduser(config)))
    why_script = "--script" if script else ""
    if not script:
        from lspguard.shim import native

        try:
            built = native.build(config)
        except native.NativeShimError as exc:
            why_script = str(exc)
        else:
            _write_atomically(target, built.read_bytes())
            return InstalledShim(target, "native")
    _write_atomically(target, script_text(config).encode())
    return InstalledShim(target, "script", why_script)


def install_shim(directory: Path, *, config: Path | None = None, force: bool = False,
                 script: bool = False) -> Path:
    """`install_shim_report`'s path."""
    return install_shim_report(directory, config=config, force=force, script=script).path

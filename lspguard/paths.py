"""Where lspguard keeps its files, all private to the user (dirs 0700, files 0600).

Overridable for tests and unusual setups with LSPGUARD_STATE_DIR, LSPGUARD_RUNTIME_DIR and
LSPGUARD_CONFIG_DIR. Imported on the proxy's way to its first forwarded byte, so platformdirs
and tempfile are imported only where they are used.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["config_dir", "ensure_private_dir", "logs_dir", "runtime_dir", "sessions_dir",
           "state_dir", "write_private_file"]

APP = "lspguard"


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make sure it is a 0700 directory owned by us."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):  # not followed: a link could hand our files to someone else
        raise OSError(f"{path} is a symbolic link; lspguard keeps its files in a real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise OSError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise PermissionError(f"{path} is owned by uid {st.st_uid}, not by us ({os.getuid()})")
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def state_dir() -> Path:
    """Persistent per-user state: session logs, incident bundles."""
    env = os.environ.get("LSPGUARD_STATE_DIR")
    if env:
        return ensure_private_dir(Path(env))
    import platformdirs

    return ensure_private_dir(Path(platformdirs.user_state_dir(APP)))


def runtime_dir() -> Path:
    """Per-user runtime files (status files, control sockets); falls back to /tmp/lspguard-UID."""
    env = os.environ.get("LSPGUARD_RUNTIME_DIR")
    if env:
        return ensure_private_dir(Path(env))
    import tempfile
    import warnings

    import platformdirs

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        base = Path(platformdirs.user_runtime_dir(APP))
    if base.parent.is_dir() and os.access(base.parent, os.W_OK):
        return ensure_private_dir(base)
    return ensure_private_dir(Path(tempfile.gettempdir()) / f"{APP}-{os.getuid()}")


def config_dir() -> Path:
    """The user's config dir (not created: only read)."""
    env = os.environ.get("LSPGUARD_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def logs_dir() -> Path:
    return ensure_private_dir(state_dir() / "logs")


def sessions_dir() -> Path:
    """Status files of live sessions, one `<proxy pid>.json` each."""
    return ensure_private_dir(runtime_dir() / "sessions")


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, mode 0600 (temp file in the same dir, then rename).

    The temp file is made as tempfile.mkstemp makes one (O_EXCL, 0600, a random name), without
    importing tempfile (shutil, random, bz2, lzma) into the proxy for it."""
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _create_temp(path: Path) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.urandom(6).hex()}"
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name for {path} in {path.parent}")

#!/usr/bin/env python3
"""Raw byte relay in asyncio: the practical lower bound for a Python stdio proxy.

    relay_raw.py [--uvloop] [--read-size BYTES] [--socketpair] [--pipe-size BYTES] [--] CMD [ARGS...]

Spawns CMD and copies bytes stdin -> CMD's stdin and CMD's stdout -> stdout,
without looking at them. Uses asyncio protocols/transports (no stream
coroutines) with back-pressure: a side stops reading while the other side's
write buffer is above HIGH_WATER. The child's stderr is inherited.
Exits with the child's exit code once the child has closed its stdout.

--read-size: bytes asked of each read(2) on a pipe. asyncio's pipe transport
asks for 256 KiB, and allocating a fresh 256 KiB bytes object per read lands
above glibc's mmap threshold (128 KiB): every read then costs mmap + mremap +
munmap, which dominates a small-message relay (~100 us per round trip here).
A pipe holds 64 KiB, so 64 KiB reads lose nothing. Ignored under uvloop,
which reads into its own preallocated buffer.

--socketpair: connect the child's stdin/stdout through Unix socket pairs instead of pipes, as
libuv (so uvloop's subprocess_exec, which lspguard uses) does. Shows what sockets cost against
pipes on both ends of that hop.

--pipe-size: F_SETPIPE_SZ on the pipes to and from the child (Linux; default 64 KiB, an
unprivileged process may go up to /proc/sys/fs/pipe-max-size, usually 1 MiB): fewer wake-ups
and reads per MiB for large messages.
"""
import asyncio
import os
import socket
import subprocess
import sys

HIGH_WATER = 1 << 20
READ_SIZE = 64 * 1024


class Relay(asyncio.Protocol):
    """Protocol of a read pipe; forwards to the `dst` write transport.

    Subclasses override `data_received` to look at the bytes.
    """

    def __init__(self):
        self.src = self.dst = None
        self.finished = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.src = transport

    def data_received(self, data):
        self.dst.write(data)

    def eof_received(self):
        self.dst.close()  # flushes what is buffered, then closes

    def connection_lost(self, exc):
        if not self.finished.done():
            self.finished.set_result(exc)


class Sink(asyncio.Protocol):
    """Protocol of a write pipe: back-pressure onto the relay's source."""

    def __init__(self, relay):
        self.relay = relay

    def pause_writing(self):
        self.relay.src.pause_reading()

    def resume_writing(self):
        self.relay.src.resume_reading()

    def connection_lost(self, exc):  # reader of this pipe went away
        if self.relay.src is not None:
            self.relay.src.close()


class _SockPipes:
    """Popen-like stdin/stdout file objects backed by socket pairs."""

    def __init__(self, cmd):
        (in_p, in_c), (out_p, out_c) = socket.socketpair(), socket.socketpair()
        self.proc = subprocess.Popen(cmd, stdin=in_c.fileno(), stdout=out_c.fileno())
        in_c.close()
        out_c.close()
        self.stdin = os.fdopen(in_p.detach(), "wb", buffering=0)
        self.stdout = os.fdopen(out_p.detach(), "rb", buffering=0)

    def wait(self):
        return self.proc.wait()


async def relay(cmd, up, down, read_size=READ_SIZE, socketpair=False, pipe_size=0):
    """Run CMD, relaying stdin->child through `up` and child->stdout through `down`
    (two Relay instances). Returns the child's exit code."""
    loop = asyncio.get_running_loop()
    if socketpair:
        child = _SockPipes(cmd)
    else:
        # Popen, not loop.subprocess_exec: that would give uvloop's socket pairs (see --socketpair).
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # noqa: ASYNC220
        if pipe_size:
            import fcntl
            for f in (child.stdin, child.stdout):
                fcntl.fcntl(f.fileno(), fcntl.F_SETPIPE_SZ, pipe_size)
    stdin = os.fdopen(os.dup(0), "rb", buffering=0)
    stdout = os.fdopen(os.dup(1), "wb", buffering=0)
    for r, pipe in ((up, child.stdin), (down, stdout)):
        r.dst, _ = await loop.connect_write_pipe(lambda r=r: Sink(r), pipe)
        r.dst.set_write_buffer_limits(high=HIGH_WATER)
    for r, pipe in ((up, stdin), (down, child.stdout)):
        transport, _ = await loop.connect_read_pipe(lambda r=r: r, pipe)
        if hasattr(transport, "max_size"):  # asyncio's _UnixReadPipeTransport (not uvloop)
            transport.max_size = read_size
    await down.finished  # the child closed its stdout: we are done
    down.dst.close()
    return await loop.run_in_executor(None, child.wait)


def parse_argv(argv, flags=(), options=()):
    """Split `[--flag | --option VALUE ...] [--] CMD...` into ({opt: value}, cmd)."""
    argv, opts = list(argv), {}
    while argv and (argv[0] in flags or argv[0] in options):
        a = argv.pop(0)
        opts[a] = argv.pop(0) if a in options else True
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        usage = " ".join([f"[{f}]" for f in flags] + [f"[{o} VALUE]" for o in options])
        sys.exit(f"usage: {sys.argv[0]} {usage} [--] CMD [ARGS...]")
    return opts, argv


def run(main_coro_factory, use_uvloop):
    if use_uvloop:
        import uvloop
        return uvloop.run(main_coro_factory())
    return asyncio.run(main_coro_factory())


def main():
    flags, cmd = parse_argv(sys.argv[1:], ("--uvloop", "--socketpair"), ("--read-size", "--pipe-size"))
    read_size = int(flags.get("--read-size", READ_SIZE))
    pipe_size = int(flags.get("--pipe-size", 0))

    async def go():
        return await relay(cmd, Relay(), Relay(), read_size, "--socketpair" in flags, pipe_size)

    sys.exit(run(go, "--uvloop" in flags))


if __name__ == "__main__":
    main()

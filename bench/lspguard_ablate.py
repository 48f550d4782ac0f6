#!/usr/bin/env python3
"""lspguard with parts of its hot path switched off, to attribute its cost.

    lspguard_ablate.py --mode relay|frames|full [--] CMD [ARGS...]

Runs `lspguard run -- CMD` (same process setup: anyio on uvloop, subprocess transport, status
file, logging) with the per-message work cut down at run time, by patching, never by editing
lspguard/:

  relay   bytes are forwarded as they are read: no framing, no peek, no pending table
          (what lspguard's plumbing costs, compared with relay_raw_uvloop)
  frames  frames are split by lspguard's FrameDecoder and forwarded: no peek, no pending table
          (adds framing.py's cost)
  full    unchanged lspguard (same as the `lspguard` candidate)

relay and frames do not see `exit`, so the session ends when the server exits, with exit code
1 instead of 0; the benchmark only needs the tree to go away. bench.py candidates:
lspguard_relay, lspguard_frames (full is just `lspguard`).
"""
import sys


class _Chunk:
    """Stands in for a Frame: the relay path only reads `.raw`."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw


def patch(mode):
    from lspguard.proxy import pipes, relay

    if mode == "full":
        return

    def from_client(self, frame):
        self.backend.send(frame.raw)

    def from_server(self, *args):  # (frame) or, since the restart work, (generation, frame)
        self.client_out.write(args[-1].raw)

    relay.Relay._from_client = from_client
    relay.Relay._from_server = from_server
    if mode == "relay":
        def feed(self, data):
            self.bytes_in += len(data)
            self.on_frame(_Chunk(data))

        pipes.FrameReader.feed = feed
    elif mode != "frames":
        sys.exit(f"unknown --mode {mode!r}")


def main():
    argv = sys.argv[1:]
    if len(argv) < 2 or argv[0] != "--mode":
        sys.exit(__doc__)
    mode, argv = argv[1], argv[2:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    patch(mode)
    from lspguard.cli.main import main as cli_main

    return cli_main(["run", "--", *argv])


if __name__ == "__main__":
    sys.exit(main())

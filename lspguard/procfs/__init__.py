"""What /proc and the mount table say, read once for every layer above.

    read.py       small /proc (and /sys) files: their text, or None
    mounts.py     the mount table (mountinfo, /proc/mounts) and the mount a path is on
    fstypes.py    the one table of filesystem types: network, shared from the host, FUSE...
    syscalls.py   a thread's system call: its name, and what its fd and path arguments are
    processes.py  one process: state, parent, group, session, start time (/proc/PID/stat)
    threads.py    one thread of a process: state, wait channel, syscall, stack, counters
    helper.py     a helper process that can be abandoned (a call on a hung mount)

Standard library only (syscalls.py asks the `system-calls` package for syscall names when
first needed), and nothing else from lspguard. The proxy's start-up path imports mounts.py and
read.py, so they may import nothing heavy. Nothing here stats a path. Nothing is imported here.
"""

/* Part of the SCRIPTED FAULT SERVER: a process stuck in uninterruptible sleep (state D) on
 * demand. A vfork() parent waits, unkillable but for SIGKILL, until its child execs or exits;
 * the child never does. This stands in for stat() blocked on a hung bind mount or FUSE. */
#include <unistd.h>

int main(void) {
    if (vfork() == 0) {
        for (;;) pause();
    }
    return 0;
}

/*  sos_spawn.h: start a child process for the load tools (a node, a serf agent), tied to the
    calling process so that no child outlives a crashed or killed benchmark. */
#ifndef SOS_SPAWN_H
#define SOS_SPAWN_H

#include <sys/types.h>

/*  Fork and execv(argv[0], argv). argv is NULL-terminated and, like log_path, owned by the
    caller; both must be fully built before the call, because between fork and exec the child
    makes only async-signal-safe calls (the caller may have threads). The child dies with its
    parent (PR_SET_PDEATHSIG, SIGKILL; it exits at once if the parent is already gone), runs in
    its own process group (so a terminal's ^C reaches only the parent, which kills it), appends
    stdout and stderr to log_path (created 0600; kept as inherited if it cannot be opened), reads
    stdin from /dev/null, closes every descriptor from 3 up (close_range; where that fails,
    one by one up to max_fd, exclusive), empties its
    signal mask and execs; if the exec fails it exits with code 127. stdio is flushed before the
    fork so that no buffered output is written twice.
    Returns the child's pid, or -1 with errno set if fork failed. The caller reaps the child. */
pid_t sos_spawn(const char *const argv[], const char *log_path, long max_fd);

#endif

/*  sos_stress.c: busy processes holding a share of the CPUs while sosbench measures (stress-ng
    if it is on PATH, else spinning children of our own). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sos_stress.h"

#define S_SLICE_NS 100000000LL /* the spinning children's period: 100 ms */

struct sos_stress_t {
    pid_t *pids; /* each in its own process group, killed as a group */
    size_t n;
    char how[96];
};

static long long
s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

//  A child of our own: busy pct % of every slice, until max_s have passed
static void
s_spin(int pct, int max_s)
{
    long long end = s_now_ns() + (long long)max_s * 1000000000LL;
    volatile unsigned long sink = 0;
    while (s_now_ns() < end) {
        long long slice = s_now_ns();
        while (s_now_ns() - slice < S_SLICE_NS * pct / 100)
            for (int i = 0; i < 1000; i++)
                sink += (unsigned long)i;
        long long rest = S_SLICE_NS - (s_now_ns() - slice);
        if (rest > 0) {
            struct timespec ts = {0, (long)rest};
            nanosleep(&ts, NULL);
        }
    }
    (void)sink; /* written only so that the loop is not optimised away */
    _exit(0);
}

//  Find stress-ng on PATH
static bool
s_find(const char *name, char *path, size_t size)
{
    const char *env = getenv("PATH");
    char *copy = env ? strdup(env) : NULL;
    bool found = false;
    for (char *save = NULL, *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir && !found;
         dir = strtok_r(NULL, ":", &save))
        found = snprintf(path, size, "%s/%s", dir, name) < (int)size && access(path, X_OK) == 0;
    free(copy);
    return found;
}

sos_stress_t *
sos_stress_new(int pct, int max_s)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        cpus = 1;
    if (cpus > 256)
        cpus = 256;
    sos_stress_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->pids = calloc((size_t)cpus, sizeof *self->pids);
    if (!self->pids) {
        free(self);
        return NULL;
    }
    char stress_ng[4096], n_arg[16], load_arg[16], time_arg[24];
    bool ng = s_find("stress-ng", stress_ng, sizeof stress_ng);
    snprintf(n_arg, sizeof n_arg, "%ld", cpus);
    snprintf(load_arg, sizeof load_arg, "%d", pct);
    snprintf(time_arg, sizeof time_arg, "%ds", max_s);
    const char *argv[] = {stress_ng,   "--cpu",  n_arg,     "--cpu-load", load_arg,
                          "--timeout", time_arg, "--quiet", NULL};
    size_t count = ng ? 1 : (size_t)cpus;
    if (ng)
        snprintf(self->how, sizeof self->how, "stress-ng --cpu %ld --cpu-load %d", cpus, pct);
    else
        snprintf(self->how, sizeof self->how, "%ld spinning children at %d %%", cpus, pct);
    pid_t parent = getpid();
    fflush(NULL);
    for (size_t i = 0; i < count; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "sosbench: cannot fork a busy process: %s\n", strerror(errno));
            sos_stress_destroy(&self);
            return NULL;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (getppid() != parent)
                _exit(127);
            setpgid(0, 0);
            if (!ng)
                s_spin(pct, max_s);
            int null_fd = open("/dev/null", O_RDWR);
            if (null_fd >= 0) {
                dup2(null_fd, STDIN_FILENO);
                dup2(null_fd, STDOUT_FILENO);
            }
            execv(argv[0], (char *const *)argv);
            _exit(127);
        }
        //  Also here, so that the kill at the end cannot come before the child's own setpgid
        setpgid(pid, pid);
        self->pids[self->n++] = pid;
    }
    return self;
}

void
sos_stress_destroy(sos_stress_t **self_p)
{
    sos_stress_t *self = *self_p;
    if (!self)
        return;
    //  stress-ng's workers are its children, in its process group: kill the group
    for (size_t i = 0; i < self->n; i++)
        kill(-self->pids[i], SIGKILL);
    for (size_t i = 0; i < self->n; i++)
        waitpid(self->pids[i], NULL, 0);
    free(self->pids);
    free(self);
    *self_p = NULL;
}

const char *
sos_stress_how(const sos_stress_t *self)
{
    return self->how;
}

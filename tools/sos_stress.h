/*  sos_stress.h: busy processes that take a stated share of the machine's CPUs, for sosbench
    to measure an overlay under load: stress-ng when it is installed, else forked children
    that spin for that share of every 100 ms. */
#ifndef SOS_STRESS_H
#define SOS_STRESS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sos_stress_t sos_stress_t;

/*  Start one busy process per online CPU, each busy pct percent of the time (1 to 100), for
    at most max_s seconds: they stop by themselves then, and die with this process. Returns
    a new handle (the caller stops it with sos_stress_destroy), or NULL if nothing could be
    started (after a message on stderr). */
sos_stress_t *sos_stress_new(int pct, int max_s);

/*  Stop and reap every busy process; NULL-safe, nulls the caller's pointer. */
void sos_stress_destroy(sos_stress_t **self_p);

/*  What was started, for the report: "stress-ng --cpu 2 --cpu-load 50" or "2 spinning
    children at 50 %" */
const char *sos_stress_how(const sos_stress_t *self);

#endif

// Cores this process may run on. sched_getaffinity and CPU_COUNT need _GNU_SOURCE, which
// Swift's Glibc module does not define.
#define _GNU_SOURCE
#include <sched.h>
#include <unistd.h>
#include "fovea_quant.h"

int fovea_cpu_count(void) {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
#endif
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

#include "CMallocTuning.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int cmalloc_keep_freed_memory(void) {
#if defined(__GLIBC__)
    int ok = 1;
    /* One arena: event-loop threads then allocate from the main heap, where the settings below
     * apply (a per-thread arena grows and shrinks with mprotect: ~7 % of CPU in perf). */
    ok &= mallopt(M_ARENA_MAX, 1);
    ok &= mallopt(M_TRIM_THRESHOLD, 256 << 20);
    ok &= mallopt(M_TOP_PAD, 16 << 20);
    ok &= mallopt(M_MMAP_THRESHOLD, 4 << 20);
    return ok;
#else
    return 1;
#endif
}

#include "CMallocTuning.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int cmalloc_keep_freed_memory(void) {
#if defined(__GLIBC__)
    int ok = 1;
    ok &= mallopt(M_TRIM_THRESHOLD, 256 << 20);
    ok &= mallopt(M_TOP_PAD, 16 << 20);
    ok &= mallopt(M_MMAP_THRESHOLD, 4 << 20);
    return ok;
#else
    return 1;
#endif
}

/* glibc reads GLIBC_TUNABLES only when a process starts. A per-thread malloc arena grows its heap
 * with mprotect, 3 calls per SIP call under load (~7 % of the proxy's CPU in perf); one arena
 * (the main heap, grown with brk and kept by the settings above) avoids that. So: if the tunable
 * is not set yet, set it and exec ourselves once. Returns only when nothing was done. */
void cmalloc_reexec_with_single_arena(char *const argv[]) {
#if defined(__GLIBC__)
    const char *current = getenv("GLIBC_TUNABLES");
    if (getenv("SWITCHYARD_NO_REEXEC") != NULL) return;
    if (current != NULL && strstr(current, "glibc.malloc.arena_max") != NULL) return;
    char value[512];
    if (current != NULL && current[0] != '\0') {
        if (strlen(current) > sizeof(value) - 32) return;
        strcpy(value, current);
        strcat(value, ":glibc.malloc.arena_max=1");
    } else {
        strcpy(value, "glibc.malloc.arena_max=1");
    }
    if (setenv("GLIBC_TUNABLES", value, 1) != 0) return;
    execv("/proc/self/exe", argv);
    /* exec failed: carry on with the default allocator settings. */
#else
    (void)argv;
#endif
}

/* glibc malloc tuning for long-running servers (mallopt lives in <malloc.h>, which Swift's Glibc
 * module does not export). */
#ifndef CMALLOC_TUNING_H
#define CMALLOC_TUNING_H
/* Keeps freed memory in the process instead of trimming the heap after every burst.
 * Returns 1 when every setting was accepted. */
int cmalloc_keep_freed_memory(void);
/* Re-executes the process once with GLIBC_TUNABLES=glibc.malloc.arena_max=1 unless already set
 * (or SWITCHYARD_NO_REEXEC is set). Returns only when it did not exec. */
void cmalloc_reexec_with_single_arena(char *const argv[]);
#endif

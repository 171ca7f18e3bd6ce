/* glibc malloc tuning for long-running servers (mallopt lives in <malloc.h>, which Swift's Glibc
 * module does not export). */
#ifndef CMALLOC_TUNING_H
#define CMALLOC_TUNING_H
/* Keeps freed memory in the process instead of trimming the heap after every burst, and uses
 * a single arena. Call before any thread starts. Returns 1 when every setting was accepted. */
int cmalloc_keep_freed_memory(void);
#endif

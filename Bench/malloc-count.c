/* Counts allocations for scripts/bench-core (LD_PRELOAD). proxy-core-bench finds `mc_count` with
 * dlsym and reports the allocations made inside ProxyCore.handle per call. */
#define _GNU_SOURCE
#include <stddef.h>
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
static __thread long count;
long mc_count(void) { return count; }
void *malloc(size_t s) { count++; return __libc_malloc(s); }
void *calloc(size_t a, size_t b) { count++; return __libc_calloc(a, b); }
void *realloc(void *p, size_t s) { count++; return __libc_realloc(p, s); }
void free(void *p) { __libc_free(p); }
int posix_memalign(void **p, size_t a, size_t s) { count++; *p = __libc_memalign(a, s); return *p ? 0 : 12; }
void *aligned_alloc(size_t a, size_t s) { count++; return __libc_memalign(a, s); }
void *memalign(size_t a, size_t s) { count++; return __libc_memalign(a, s); }

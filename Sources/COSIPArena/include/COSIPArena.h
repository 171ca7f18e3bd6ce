/* A per-thread scratch arena for libosip2's allocations while SIPCore parses one header value.
 *
 * libosip2 allocates a struct, a string for every component and a list node for every parameter
 * of a Via, URI or name-addr, and SIPCore frees them all as soon as it has copied what it needs:
 * about 160 malloc/free pairs per SIP call through the proxy, each paying for glibc's locking and
 * bin bookkeeping (~9 % of the proxy core's instructions in callgrind). Between `cosip_arena_begin`
 * and `cosip_arena_end` every libosip2 allocation of the calling thread is a pointer bump in a
 * 64 KiB buffer the thread keeps; `free` of such a pointer does nothing, and `end` rewinds the
 * buffer. Outside a begin/end pair, or when the buffer is full, allocations go to malloc as before
 * (each arena block has a header, so `free` and `realloc` tell the two kinds apart). */
#ifndef COSIP_ARENA_H
#define COSIP_ARENA_H

/* Routes libosip2's allocations through the arena functions (process-wide, once, before parsing). */
void cosip_arena_install(void);

/* Starts a parse on this thread: allocations come from its arena until the matching end. */
void cosip_arena_begin(void);

/* Ends it: every arena allocation since begin must have been freed (or be abandoned); the arena is
 * rewound. Nested pairs are allowed; only the outermost end rewinds. */
void cosip_arena_end(void);

/* Test hooks: bytes in use in this thread's arena, and allocations that fell back to malloc. */
unsigned long cosip_arena_used(void);
unsigned long cosip_arena_fallbacks(void);
#endif

#include "COSIPArena.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <osipparser2/osip_port.h>

#define ARENA_SIZE (64 * 1024)
#define ALIGN 16

/* Each block starts with this header (16 bytes, so the block stays 16-aligned). */
typedef struct {
    size_t size;    /* requested size */
    size_t inArena; /* 1: in the thread's arena; 0: from malloc */
} block_header;

typedef struct {
    char *base;
    size_t used;
    int depth;
    unsigned long fallbacks;
} arena_state;

static __thread arena_state arena;

static void *arena_malloc(size_t size) {
    size_t total = sizeof(block_header) + ((size + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    block_header *h = NULL;
    if (arena.depth > 0) {
        if (arena.base == NULL) arena.base = malloc(ARENA_SIZE);
        if (arena.base != NULL && total <= ARENA_SIZE - arena.used) {
            h = (block_header *)(arena.base + arena.used);
            arena.used += total;
            h->inArena = 1;
        } else {
            arena.fallbacks++;
        }
    }
    if (h == NULL) {
        h = malloc(sizeof(block_header) + size);
        if (h == NULL) return NULL;
        h->inArena = 0;
    }
    h->size = size;
    return h + 1;
}

static void arena_free(void *p) {
    if (p == NULL) return;
    block_header *h = (block_header *)p - 1;
    if (!h->inArena) free(h);
}

static void *arena_realloc(void *p, size_t size) {
    if (p == NULL) return arena_malloc(size);
    block_header *h = (block_header *)p - 1;
    void *q = arena_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, h->size < size ? h->size : size);
    arena_free(p);
    return q;
}

void cosip_arena_install(void) { osip_set_allocators(arena_malloc, arena_realloc, arena_free); }

void cosip_arena_begin(void) { arena.depth++; }

void cosip_arena_end(void) {
    if (arena.depth > 0 && --arena.depth == 0) arena.used = 0;
}

unsigned long cosip_arena_used(void) { return arena.used; }
unsigned long cosip_arena_fallbacks(void) { return arena.fallbacks; }

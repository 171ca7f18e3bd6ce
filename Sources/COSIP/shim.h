/* COSIP: libosip2's parser (osipparser2) for SIPCore. Only SIPCore imports this module.
 * Macros and list walks that Swift cannot import are wrapped here as static inline functions. */
#include <stdlib.h>
#include <string.h>
#include <osipparser2/osip_parser.h>
#include <osipparser2/osip_port.h>

static inline void cosip_free(void *p) { osip_free(p); }

/* libosip2 prints parse errors to stdout unless a trace function is installed. */
static void cosip_silent_trace(const char *fi, int li, osip_trace_level_t level, const char *chfr, va_list ap) {
    (void)fi; (void)li; (void)level; (void)chfr; (void)ap;
}
static inline void cosip_init_once(void) {
    parser_init();
    osip_trace_initialize_func(END_TRACE_LEVEL, cosip_silent_trace);
}

/* Finds a generic parameter (name is lower-case). Returns 1 and sets *value (may be NULL for a flag
 * parameter such as ";rport" or ";lr") when present, 0 when absent. */
static inline int cosip_param(osip_list_t *params, const char *name, const char **value) {
    osip_generic_param_t *p = NULL;
    if (osip_generic_param_get_byname(params, (char *)name, &p) != 0 || p == NULL) { *value = NULL; return 0; }
    *value = p->gvalue;
    return 1;
}
static inline int cosip_via_count(osip_message_t *m) { return osip_list_size(&m->vias); }
static inline osip_via_t *cosip_via_at(osip_message_t *m, int i) { return (osip_via_t *)osip_list_get(&m->vias, i); }
static inline int cosip_route_count(osip_message_t *m) { return osip_list_size(&m->routes); }
static inline osip_route_t *cosip_route_at(osip_message_t *m, int i) { return (osip_route_t *)osip_list_get(&m->routes, i); }
static inline int cosip_record_route_count(osip_message_t *m) { return osip_list_size(&m->record_routes); }
static inline int cosip_header_count(osip_message_t *m) { return osip_list_size(&m->headers); }
static inline osip_header_t *cosip_header_at(osip_message_t *m, int i) { return (osip_header_t *)osip_list_get(&m->headers, i); }
static inline int cosip_contact_count(osip_message_t *m) { return osip_list_size(&m->contacts); }

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
/* Up to four parameters looked up in one walk of the list (cosip_param walks it once per name):
 * for each of `names` (lower-case; NULL for an unused slot), found[i] is 1 and value[i] its value
 * (NULL for a flag) at the first parameter of that name, case-insensitive, as cosip_param finds it. */
static inline void cosip_params4(osip_list_t *params, const char *const names[4], int found[4], const char *value[4]) {
    size_t lengths[4];
    for (int i = 0; i < 4; i++) {
        found[i] = 0;
        value[i] = NULL;
        lengths[i] = names[i] ? strlen(names[i]) : 0;
    }
    osip_list_iterator_t it;
    for (osip_generic_param_t *p = (osip_generic_param_t *)osip_list_get_first(params, &it); p != NULL;
         p = (osip_generic_param_t *)osip_list_get_next(&it)) {
        if (p->gname == NULL) continue;
        size_t length = strlen(p->gname);
        for (int i = 0; i < 4; i++) {
            if (!found[i] && names[i] && lengths[i] == length && osip_strncasecmp(p->gname, names[i], length) == 0) {
                found[i] = 1;
                value[i] = p->gvalue;
                break;
            }
        }
    }
}
static inline int cosip_via_count(osip_message_t *m) { return osip_list_size(&m->vias); }
static inline osip_via_t *cosip_via_at(osip_message_t *m, int i) { return (osip_via_t *)osip_list_get(&m->vias, i); }
static inline int cosip_route_count(osip_message_t *m) { return osip_list_size(&m->routes); }
static inline osip_route_t *cosip_route_at(osip_message_t *m, int i) { return (osip_route_t *)osip_list_get(&m->routes, i); }
static inline int cosip_record_route_count(osip_message_t *m) { return osip_list_size(&m->record_routes); }
static inline int cosip_header_count(osip_message_t *m) { return osip_list_size(&m->headers); }
static inline osip_header_t *cosip_header_at(osip_message_t *m, int i) { return (osip_header_t *)osip_list_get(&m->headers, i); }
static inline int cosip_contact_count(osip_message_t *m) { return osip_list_size(&m->contacts); }

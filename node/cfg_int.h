/*
 * fennec — the YAML toolkit of the configuration: typed getters with "FILE:LINE: KEY: what"
 * messages, shared by node/cfg.c (the file) and node/cfg_health.c (the health section, which
 * also arrives on its own through the replication log). Private to the config module.
 */
#ifndef FENNEC_CFG_INT_H
#define FENNEC_CFG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "fennec/cfg.h"

#define CFG_MAX_FILE (1024 * 1024) /* a config is small; anything larger is a mistake */
#define CFG_MAX_ID   63
#define CFG_PATH_LEN 160

typedef struct pctx {
    yaml_document_t *doc;
    const char *name; /* file name used in messages */
    const char *base; /* folder for relative paths, NULL = current directory */
    char *err;
    size_t errlen;
    uint8_t *seen; /* per node: already walked (a second visit means an alias) */
    size_t nnodes;
    unsigned line_base; /* added to YAML line numbers: where the text began in its file */
    const char *text;   /* the text parsed (to cut a section out of it), TEXT_LEN bytes */
    size_t text_len;
} pctx_t;

typedef struct unit {
    const char *name;
    uint64_t mult;
} unit_t;

/* The line of N in its file (1-based), P->line_base included. */
unsigned long cy_line(const pctx_t *p, const yaml_node_t *n);
const char *cy_quote(const char *s, char *buf, size_t cap);
/* Writes "NAME:LINE: PATH: message" into p->err; returns FENNEC_ECONFIG. */
int cy_fail(pctx_t *p, const yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int cy_node_get(pctx_t *p, int idx, const char *path, const yaml_node_t *at, yaml_node_t **out);
const char *cy_kind_name(const yaml_node_t *n);
void cy_path_key(char *dst, const char *path, const char *key);
void cy_path_index(char *dst, const char *path, size_t i);
bool cy_scalar_is_null(const yaml_node_t *n);
int cy_want_scalar(pctx_t *p, const yaml_node_t *n, const char *path, const char **out);
int cy_want_plain(pctx_t *p, const yaml_node_t *n, const char *path, const char *what,
                  const char **out);
int cy_get_str(pctx_t *p, const yaml_node_t *n, const char *path, char **out);
int cy_get_bool(pctx_t *p, const yaml_node_t *n, const char *path, bool *out);
bool cy_parse_digits(const char *s, size_t len, uint64_t *out);
int cy_get_uint(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                uint64_t *out);
int cy_get_double(pctx_t *p, const yaml_node_t *n, const char *path, double min, bool min_open,
                  double max, bool max_open, double *out);
int cy_get_number_unit(pctx_t *p, const yaml_node_t *n, const char *path, const unit_t *units,
                       const char *example, uint64_t min, uint64_t max, uint64_t *out);
int cy_get_duration(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min_ns,
                    uint64_t max_ns, uint64_t *out);
int cy_get_size(pctx_t *p, const yaml_node_t *n, const char *path, uint64_t min, uint64_t max,
                uint64_t *out);
int cy_addr_parse(const char *text, cfg_addr_t *out, const char **why);
int cy_get_addr(pctx_t *p, const yaml_node_t *n, const char *path, cfg_addr_t *out);
bool cy_addr_equal(const cfg_addr_t *a, const cfg_addr_t *b);
int cy_map_fields_k(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                    yaml_node_t **vals, yaml_node_t **keys_out);
int cy_map_fields(pctx_t *p, yaml_node_t *n, const char *path, const char *const *keys,
                  yaml_node_t **vals);
int cy_want_seq(pctx_t *p, yaml_node_t *n, const char *path, size_t max, size_t *count);
char *cy_resolve_path(const pctx_t *p, const char *path);
int cy_get_path(pctx_t *p, const yaml_node_t *n, const char *path, char **out);
bool cy_id_valid(const char *s);

/* node/cfg_transfer.c: `tsig_keys:` into cfg->tsig_keys, and a `transfer:` mapping at PATH
 * (keys resolved in cfg->tsig_keys, parsed first) into OUT. */
int cy_parse_tsig_keys(pctx_t *p, yaml_node_t *n, cfg_t *cfg);
int cy_parse_transfer(pctx_t *p, yaml_node_t *n, const char *path, const cfg_t *cfg,
                      cfg_transfer_t *out);
void cy_transfer_clear(cfg_transfer_t *t);
/* Whether A and B hold the same keys and global rule (what the workers hold until restart). */
bool cy_transfer_same(const cfg_t *a, const cfg_t *b);

/* node/cfg_anycast.c: the defaults of `anycast:`, the section at N into cfg->anycast (after
 * listen, whose DNS ports it reads), and freeing what it holds. */
void cy_anycast_defaults(cfg_anycast_t *a);
int cy_parse_anycast(pctx_t *p, yaml_node_t *n, cfg_t *cfg);
void cy_anycast_clear(cfg_anycast_t *a);

/* Loads YAML (LEN bytes) as one document into *DOC (yaml_document_delete() it) and sets up P
 * for it (p->seen: free() it). FENNEC_ECONFIG with "NAME:LINE: yaml: ..." for bad YAML, more
 * than one document, or an empty one (EMPTY_WHY says what is missing). */
int cy_doc_load(pctx_t *p, const char *yaml, size_t len, yaml_document_t *doc,
                const char *empty_why);

#endif

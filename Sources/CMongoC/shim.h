#ifndef ANCRE_CMONGOC_SHIM_H
#define ANCRE_CMONGOC_SHIM_H
// Thin static inline wrappers for libbson/libmongoc. Debian's libbson aligns bson_t
// and bson_iter_t to 128 bytes, which Swift cannot represent: Swift code never holds
// them by value, only through these wrappers or pointers from bson_new*.
#include <mongoc/mongoc.h>
#include <string.h>

static inline size_t ancre_bson_alignment(void) { return _Alignof(bson_t); }

static inline uint32_t ancre_bson_len(const bson_t *b) { return b->len; }

/// Extended JSON of one BSON document; NULL when the bytes are not a valid document.
/// Free the result with bson_free.
static inline char *ancre_bson_to_json(const uint8_t *data, size_t len, bool canonical, size_t *out_len) {
    bson_t b;
    if (!bson_init_static(&b, data, len)) return NULL;
    return canonical ? bson_as_canonical_extended_json(&b, out_len)
                     : bson_as_relaxed_extended_json(&b, out_len);
}

/// BSON bytes parsed from Extended JSON; NULL with a message on error. Free with bson_free.
static inline uint8_t *ancre_bson_from_json(const char *json, ssize_t len, uint32_t *out_len,
                                            char *errmsg, size_t errmsg_len) {
    bson_error_t error;
    bson_t *b = bson_new_from_json((const uint8_t *)json, len, &error);
    if (!b) {
        if (errmsg_len > 0) {
            strncpy(errmsg, error.message, errmsg_len - 1);
            errmsg[errmsg_len - 1] = 0;
        }
        return NULL;
    }
    return bson_destroy_with_steal(b, true, out_len);
}

/// libbson's own structural validation, used to cross-check the Swift reader.
static inline bool ancre_bson_validate(const uint8_t *data, size_t len, size_t *err_offset) {
    bson_t b;
    if (!bson_init_static(&b, data, len)) { *err_offset = 0; return false; }
    return bson_validate(&b, BSON_VALIDATE_UTF8 | BSON_VALIDATE_UTF8_ALLOW_NULL, err_offset);
}

#endif

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

// ---- libmongoc (used only by Sources/Mongo/LibMongoC.swift) ----
// Documents cross the boundary as bytes (pointer + length): a bson_t lives only on
// the C stack here (bson_init_static over Swift's bytes) or on libmongoc's heap.

static inline size_t ancre_bson_error_alignment(void) { return _Alignof(bson_error_t); }

/// Copies a reply into a bson_malloc'd buffer Swift frees with bson_free.
static inline void ancre_copy_out(const bson_t *b, uint8_t **data, uint32_t *len) {
    *len = b->len;
    *data = (uint8_t *)bson_malloc(b->len);
    memcpy(*data, bson_get_data(b), b->len);
}

static inline void ancre_mongoc_init(void) { mongoc_init(); }

/// A client pool for `uri_string`; NULL with `error` set when the URI is invalid.
/// Timeouts <= 0 keep the URI's (or libmongoc's) value; appname is set unless the URI has one.
static inline mongoc_client_pool_t *ancre_pool_new(const char *uri_string, int32_t server_selection_ms,
                                                   int32_t connect_ms, int32_t socket_ms, const char *appname,
                                                   bson_error_t *error) {
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_string, error);
    if (!uri) return NULL;
    if (server_selection_ms > 0)
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, server_selection_ms);
    if (connect_ms > 0)
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, connect_ms);
    if (socket_ms > 0)
        mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, socket_ms);
    if (!mongoc_uri_get_appname(uri)) mongoc_uri_set_appname(uri, appname);
    mongoc_client_pool_t *pool = mongoc_client_pool_new_with_error(uri, error);
    mongoc_uri_destroy(uri);
    if (pool) mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    return pool;
}

/// Runs a command with read preference primary. The reply (also on failure, when
/// the server sent one) is copied out; free it with bson_free.
static inline bool ancre_command(mongoc_client_t *client, const char *db, const uint8_t *cmd, size_t cmd_len,
                                 uint8_t **reply, uint32_t *reply_len, bson_error_t *error) {
    bson_t command, r;
    *reply = NULL;
    *reply_len = 0;
    if (!bson_init_static(&command, cmd, cmd_len)) {
        bson_set_error(error, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, "invalid command document");
        return false;
    }
    bool ok = mongoc_client_command_simple(client, db, &command, NULL, &r, error);
    if (r.len > 5) ancre_copy_out(&r, reply, reply_len);
    bson_destroy(&r);
    return ok;
}

/// A find cursor over `db.coll`; filter and opts are copied by libmongoc.
static inline mongoc_cursor_t *ancre_find(mongoc_client_t *client, const char *db, const char *coll,
                                          const uint8_t *filter, size_t filter_len,
                                          const uint8_t *opts, size_t opts_len) {
    bson_t f, o;
    if (!bson_init_static(&f, filter, filter_len) || !bson_init_static(&o, opts, opts_len)) return NULL;
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    mongoc_cursor_t *cursor = mongoc_collection_find_with_opts(c, &f, &o, NULL);
    mongoc_collection_destroy(c);
    return cursor;
}

/// A listCollections cursor (full collection info documents).
static inline mongoc_cursor_t *ancre_list_collections(mongoc_client_t *client, const char *db,
                                                      const uint8_t *opts, size_t opts_len) {
    bson_t o;
    if (!bson_init_static(&o, opts, opts_len)) return NULL;
    mongoc_database_t *d = mongoc_client_get_database(client, db);
    mongoc_cursor_t *cursor = mongoc_database_find_collections_with_opts(d, &o);
    mongoc_database_destroy(d);
    return cursor;
}

/// A listIndexes cursor (empty when the collection does not exist).
static inline mongoc_cursor_t *ancre_list_indexes(mongoc_client_t *client, const char *db, const char *coll) {
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    mongoc_cursor_t *cursor = mongoc_collection_find_indexes_with_opts(c, NULL);
    mongoc_collection_destroy(c);
    return cursor;
}

/// The next document as a borrowed view, valid until the next call on the cursor.
static inline bool ancre_cursor_next(mongoc_cursor_t *cursor, const uint8_t **data, uint32_t *len) {
    const bson_t *doc = NULL;
    if (!mongoc_cursor_next(cursor, &doc)) return false;
    *data = bson_get_data(doc);
    *len = doc->len;
    return true;
}

/// The cursor's error, if any, and the server's reply (copied out; free with bson_free).
static inline bool ancre_cursor_error(mongoc_cursor_t *cursor, bson_error_t *error,
                                      uint8_t **reply, uint32_t *reply_len) {
    const bson_t *r = NULL;
    *reply = NULL;
    *reply_len = 0;
    if (!mongoc_cursor_error_document(cursor, error, &r)) return false;
    if (r && r->len > 5) ancre_copy_out(r, reply, reply_len);
    return true;
}

/// An unordered or ordered bulk write on `db.coll`.
static inline mongoc_bulk_operation_t *ancre_bulk_new(mongoc_client_t *client, const char *db, const char *coll,
                                                     bool ordered) {
    bson_t opts;
    bson_init(&opts);
    BSON_APPEND_BOOL(&opts, "ordered", ordered);
    mongoc_collection_t *c = mongoc_client_get_collection(client, db, coll);
    mongoc_bulk_operation_t *bulk = mongoc_collection_create_bulk_operation_with_opts(c, &opts);
    mongoc_collection_destroy(c);
    bson_destroy(&opts);
    return bulk;
}

/// Queues one insert; libmongoc copies the document.
static inline bool ancre_bulk_insert(mongoc_bulk_operation_t *bulk, const uint8_t *doc, size_t len,
                                     bson_error_t *error) {
    bson_t d;
    if (!bson_init_static(&d, doc, len)) {
        bson_set_error(error, MONGOC_ERROR_BSON, MONGOC_ERROR_BSON_INVALID, "invalid document");
        return false;
    }
    return mongoc_bulk_operation_insert_with_opts(bulk, &d, NULL, error);
}

/// Executes the bulk write; the reply is copied out (free with bson_free). Returns 0 on failure.
static inline uint32_t ancre_bulk_execute(mongoc_bulk_operation_t *bulk, uint8_t **reply, uint32_t *reply_len,
                                          bson_error_t *error) {
    bson_t r;
    uint32_t server = mongoc_bulk_operation_execute(bulk, &r, error);
    ancre_copy_out(&r, reply, reply_len);
    bson_destroy(&r);
    return server;
}

#endif

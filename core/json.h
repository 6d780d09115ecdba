/* core/json.h - the small JSON reader and writer behind safetensors headers (core/json.c). */
#ifndef EMBER_CORE_JSON_H
#define EMBER_CORE_JSON_H

#include "internal.h"

typedef enum {
    EM__JSON_NULL, EM__JSON_BOOL, EM__JSON_INT, EM__JSON_FLOAT, EM__JSON_STRING,
    EM__JSON_ARRAY, EM__JSON_OBJECT
} em__json_kind;

/* One value. Members of an array or object are linked through first/next (indices into the
 * document); an object member carries its key. Everything is owned by the document. */
typedef struct em__json {
    em__json_kind kind;
    bool b;
    int64_t i;          /* EM__JSON_INT */
    double f;           /* EM__JSON_FLOAT, and EM__JSON_INT as a double */
    const char *s;      /* EM__JSON_STRING, NUL-terminated UTF-8 */
    const char *key;    /* the member's key inside an object, else NULL */
    int n;              /* members of an array or object */
    int first, next;
} em__json;

typedef struct em__json_doc em__json_doc;

/* Parses len bytes of JSON; NULL on failure with the error set: EM_ERR_NOMEM, or EM_ERR_IO
 * naming `what` (the file), the byte offset (counted from the file's start, past the
 * 8-byte length) and what was expected. A top-level object must not repeat a key. The
 * caller frees the document with em__json_free. Thread-safe (no global state). */
em__json_doc *em__json_parse(const char *text, size_t len, const char *what);
void em__json_free(em__json_doc *d);

/* Navigation; each returns NULL when the value is absent or of another kind. Borrowed. */
const em__json *em__json_root(const em__json_doc *d);
const em__json *em__json_get(const em__json_doc *d, const em__json *obj, const char *key);
const em__json *em__json_at(const em__json_doc *d, const em__json *arr, int i);
const em__json *em__json_first(const em__json_doc *d, const em__json *j);
const em__json *em__json_next(const em__json_doc *d, const em__json *j);
const char *em__json_str(const em__json *j);

/* Appends s as a JSON string literal (quoted, escaped). */
void em__json_put_string(em_strbuf *sb, const char *s);

#endif

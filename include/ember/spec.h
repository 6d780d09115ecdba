/* ember/spec.h - spec strings: how every pluggable thing is named and configured.
 *
 * A spec reads like PyTorch's own repr:
 *
 *     Sequential(Linear(3, 64), ReLU(), Linear(64, 10))
 *     SGD(lr=0.001, momentum=0.9)        CSV(path="data.csv", label="label")
 *
 * Grammar: spec := Name [ "(" [ arg { "," arg } ] ")" ]; arg := [ key "=" ] value;
 * value := number | "string" | true | false | None | [ value, ... ] | spec. True/False are
 * accepted too. Each registered type declares its parameters (name, kind, default), and one
 * binder checks a parsed spec against them, so errors are the same everywhere and precise:
 * "Linear: unknown argument 'in_feature'; did you mean 'in_features'?".
 */
#ifndef EMBER_SPEC_H
#define EMBER_SPEC_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- parameter declarations (what a type accepts) -------------------------------------- */

typedef enum em_param_kind {
    EM_PARAM_INT = 1,
    EM_PARAM_FLOAT,       /* accepts integers too */
    EM_PARAM_BOOL,
    EM_PARAM_STRING,
    EM_PARAM_INTS,        /* [1, 2, 3]; a single integer is accepted as a 1-element list */
    EM_PARAM_FLOATS,
    EM_PARAM_STRINGS,
    EM_PARAM_SPEC,        /* a nested spec, e.g. a module or a scheduler's optimizer */
    EM_PARAM_SPECS_VARARG, /* every remaining positional argument, each a spec (Sequential) */
    EM_PARAM_KIND_COUNT
} em_param_kind;

typedef struct em_param_decl {
    const char *name;
    em_param_kind kind;
    /* The default as spec text ("1e-3", "true", "[0.9, 0.999]", "None"), or NULL when the
     * argument is required. "None" makes the argument optional with no value. */
    const char *default_value;
} em_param_decl;

/* ---- parsed specs ---------------------------------------------------------------------- */

typedef struct em_spec em_spec;   /* a parsed, immutable spec tree */

/* Parses text; NULL with an error naming the column ("spec: 1:17: expected ')'"). `what`
 * names the source in messages (a file:line, or NULL for "spec"). Free with em_spec_free. */
EM_API em_spec *em_spec_parse(const char *text, const char *what);
EM_API void em_spec_free(em_spec *s);
EM_API const char *em_spec_name(const em_spec *s);   /* borrowed */
/* The canonical text of s (caller frees). */
EM_API char *em_spec_str(const em_spec *s);
/* The shortest text that reads back as v, as Python's repr writes a float ("0.25", "1e-05",
 * "1.0", "inf", "nan"), always with '.' whatever the locale. Writes at most `size` bytes into
 * buf (32 always suffice) and returns buf. Thread-safe. */
EM_API const char *em_float_repr(double v, char *buf, size_t size);

/* ---- bound arguments (what a constructor reads) ---------------------------------------- */

typedef struct em_args em_args;

/* Binds s's arguments to the declared parameters of type `type_name`: positional in order,
 * then keywords; defaults fill the rest. Errors: unknown argument (with a did-you-mean),
 * missing required argument, wrong kind ("Linear: argument 'in_features' must be an
 * integer, got \"3\""), duplicates, too many positional arguments. */
EM_API em_args *em_args_bind(const em_spec *s, int nparams, const em_param_decl *params);
EM_API void em_args_free(em_args *a);

/* Getters by parameter name; asking for an undeclared name or the wrong kind is a bug in
 * the caller and returns the zero value with an error set. */
EM_API bool em_args_has(const em_args *a, const char *name);   /* false for None/absent */
EM_API int64_t em_args_int(const em_args *a, const char *name);
EM_API double em_args_float(const em_args *a, const char *name);
EM_API bool em_args_bool(const em_args *a, const char *name);
EM_API const char *em_args_str(const em_args *a, const char *name);        /* borrowed */
EM_API int em_args_count(const em_args *a, const char *name);              /* list length */
EM_API int64_t em_args_int_at(const em_args *a, const char *name, int i);
EM_API double em_args_float_at(const em_args *a, const char *name, int i);
EM_API const char *em_args_str_at(const em_args *a, const char *name, int i);
EM_API const em_spec *em_args_spec(const em_args *a, const char *name);     /* EM_PARAM_SPEC */
EM_API const em_spec *em_args_spec_at(const em_args *a, const char *name, int i); /* VARARG */
/* The bound arguments as spec text, with every argument that differs from its default
 * (what printing a module gives back). Caller frees. */
EM_API char *em_args_str_repr(const em_args *a, const char *type_name);

/* ---- "did you mean" ----------------------------------------------------------------------- */

/* The name among names[0..n) closest to `name` by edit distance (case-sensitive), or NULL
 * when none is close enough to be a typo (more than max(2, strlen(name) / 3) edits). Returns
 * one of the given pointers (borrowed). The same rule as the spec binder's suggestions, for
 * host programs and the `ember` tool's option names. Thread-safe; no allocation. */
EM_API const char *em_closest_name(const char *name, const char *const *names, int n);

#ifdef __cplusplus
}
#endif
#endif

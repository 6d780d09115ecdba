/* core/dtype.c - dtype names and sizes, and PyTorch's type promotion rules. */
#include <string.h>
#include <strings.h>

#include "internal.h"

static const struct {
    const char *name;     /* PyTorch's name, as printed in dtype=torch.<name> */
    const char *alias;
    size_t size;
} dtype_info[EM_DTYPE_COUNT] = {
    [EM_DTYPE_UNSPEC] = {"?", "?", 0},
    [EM_F32] = {"float32", "f32", 4},
    [EM_F64] = {"float64", "f64", 8},
    [EM_F16] = {"float16", "f16", 2},
    [EM_BF16] = {"bfloat16", "bf16", 2},
    [EM_I64] = {"int64", "i64", 8},
    [EM_I32] = {"int32", "i32", 4},
    [EM_U8] = {"uint8", "u8", 1},
    [EM_BOOL] = {"bool", "bool", 1},
};

const char *em_dtype_name(em_dtype dt)
{
    return dt > 0 && dt < EM_DTYPE_COUNT ? dtype_info[dt].name : "?";
}

size_t em_dtype_size(em_dtype dt)
{
    return dt > 0 && dt < EM_DTYPE_COUNT ? dtype_info[dt].size : 0;
}

bool em_dtype_is_float(em_dtype dt)
{
    return dt == EM_F32 || dt == EM_F64 || dt == EM_F16 || dt == EM_BF16;
}

em_dtype em_dtype_parse(const char *s)
{
    static const struct {
        const char *name;
        em_dtype dt;
    } extra[] = {{"float", EM_F32}, {"double", EM_F64}, {"half", EM_F16}, {"long", EM_I64},
                 {"int", EM_I32}};
    if (!s)
        return EM_DTYPE_UNSPEC;
    if (strncmp(s, "torch.", 6) == 0)
        s += 6;
    for (int i = 1; i < EM_DTYPE_COUNT; i++)
        if (strcasecmp(s, dtype_info[i].name) == 0 || strcasecmp(s, dtype_info[i].alias) == 0)
            return (em_dtype)i;
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (strcasecmp(s, extra[i].name) == 0)
            return extra[i].dt;
    return EM_DTYPE_UNSPEC;
}

em_dtype em__default_float(void) { return EM_F32; }

/* Categories order the promotion lattice: bool < integer < floating. */
static int category(em_dtype dt)
{
    if (dt == EM_BOOL)
        return 0;
    return em_dtype_is_float(dt) ? 2 : 1;
}

/* Promotion of two dtypes (torch.promote_types). */
em_dtype em__promote(em_dtype a, em_dtype b)
{
    if (a == b)
        return a;
    if (a == EM_BOOL)
        return b;
    if (b == EM_BOOL)
        return a;
    int ca = category(a), cb = category(b);
    if (ca != cb)
        return ca > cb ? a : b;
    if (ca == 1) {
        /* u8 with a signed int: the signed one if it is wider, which i32/i64 always are */
        if (a == EM_U8)
            return b;
        if (b == EM_U8)
            return a;
        return (a == EM_I64 || b == EM_I64) ? EM_I64 : EM_I32;
    }
    /* floats: f16 + bf16 -> f32; anything with f64 -> f64 */
    if (a == EM_F64 || b == EM_F64)
        return EM_F64;
    return EM_F32;
}

/* torch.result_type: three priority tiers (dimensioned tensors, 0-dim tensors, wrapped
 * numbers). A lower tier only matters when its category is higher than every higher tier's;
 * then it contributes its dtype (tensors) or the default dtype of its category (numbers). */
em_dtype em__result_type(int n, em_tensor *const *ts)
{
    em_dtype tier[3] = {EM_DTYPE_UNSPEC, EM_DTYPE_UNSPEC, EM_DTYPE_UNSPEC};
    for (int i = 0; i < n; i++) {
        const em_tensor *t = ts[i];
        int k = t->wrapped_number ? 2 : (t->ndim == 0 ? 1 : 0);
        em_dtype dt = t->dtype;
        if (k == 2) {
            /* a number only stands for its category */
            dt = category(dt) == 2 ? em__default_float() : (category(dt) == 1 ? EM_I64 : EM_BOOL);
        }
        tier[k] = tier[k] == EM_DTYPE_UNSPEC ? dt : em__promote(tier[k], dt);
    }
    em_dtype r = EM_DTYPE_UNSPEC;
    for (int k = 0; k < 3; k++) {
        if (tier[k] == EM_DTYPE_UNSPEC)
            continue;
        if (r == EM_DTYPE_UNSPEC)
            r = tier[k];
        else if (category(tier[k]) > category(r))
            r = (k == 2 && category(tier[k]) == 2) ? em__default_float() : tier[k];
    }
    return r;
}

/* tests/fuzz/fuzz_plugin_descriptor.c - libFuzzer harness for the checks the loader and the
 * registry apply to what a plugin hands over (core/loader.c em__plugin_check_descriptor,
 * core/module.c em_register_module, core/optim.c em_register_optimizer). Each table is built
 * from the input: its struct_size, integers, strings (or NULL) and functions (a stub, or NULL),
 * and is copied into a heap block of exactly struct_size bytes, as an older plugin's smaller
 * table would be, so that AddressSanitizer catches a check that reads past what the plugin
 * declared. A registered type is dropped again. Links the core's objects statically. */
#include <stddef.h>

#include "ember/plugin.h"
#include "fuzz_common.h"
#include "internal.h"
#include "module_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the input front to back; past its end every read gives zeros. */
typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint32_t take_u32(reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4 && r->n; i++, r->p++, r->n--)
        v |= (uint32_t)*r->p << (8 * i);
    return v;
}

/* A short NUL-terminated string from the input (length byte, then bytes), or NULL when the
 * length byte is 255. Kept in `store` (64 bytes). */
static const char *take_str(reader *r, char *store)
{
    size_t len = take_u32(r) & 0xff;
    if (len == 255)
        return NULL;
    len %= 64;
    size_t k = 0;
    for (; k < len && r->n; k++, r->p++, r->n--)
        store[k] = (char)*r->p;
    store[k] = '\0';
    return store;
}

/* struct_size as a plugin built against another header might declare it: around the real
 * size, or anything. */
static size_t take_size(reader *r, size_t real)
{
    uint32_t v = take_u32(r);
    return (v & 0x80000000u) ? v & 0xffffu : real - (v & 0x1f) + ((v >> 5) & 0x1f);
}

static int init_stub(em_registry *reg) { (void)reg; return EM_OK; }
static void shutdown_stub(void) {}
static int module_init_stub(em_module *m, const em_args *a) { (void)m; (void)a; return EM_OK; }
static em_tensor *forward_stub(em_module *m, int nin, em_tensor *const *in)
{
    (void)m; (void)nin; (void)in;
    return NULL;
}
static int optim_init_stub(em_optimizer *o, const em_args *a) { (void)o; (void)a; return EM_OK; }
static int step_stub(em_optimizer *o) { (void)o; return EM_OK; }

/* Copies the first `declared` bytes of `full` (capped at its real size) into a block of
 * exactly that many bytes, with struct_size = declared. */
static void *exact_copy(const void *full, size_t real, size_t declared)
{
    size_t n = declared < real ? declared : real;
    if (n < sizeof(size_t))
        n = sizeof(size_t);
    unsigned char *p = malloc(n);
    if (!p)
        abort();
    memcpy(p, full, n);
    memcpy(p, &declared, sizeof declared);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    char s1[64], s2[64], s3[64];
    uint32_t bits = take_u32(&r);

    em_plugin d = {0};
    size_t dsize = take_size(&r, sizeof d);
    d.abi_major = (bits & 1) ? take_u32(&r) : EMBER_ABI_MAJOR;
    d.abi_minor = (bits & 2) ? take_u32(&r) : EMBER_ABI_MINOR;
    d.name = take_str(&r, s1);
    d.version = take_str(&r, s2);
    d.description = take_str(&r, s3);
    d.init = (bits & 4) ? init_stub : NULL;
    d.shutdown = (bits & 8) ? shutdown_stub : NULL;
    em_plugin *dp = exact_copy(&d, sizeof d, dsize);
    char why[256] = "";
    int rc = em__plugin_check_descriptor((bits & 16) ? NULL : dp, why, sizeof why);
    FUZZ_CHECK(rc == EM_OK || why[0], "a refused descriptor with no reason");
    FUZZ_CHECK(rc != EM_OK || (dp->name && dp->init && dp->abi_major == EMBER_ABI_MAJOR),
               "an accepted descriptor without a name, an init or the right ABI major");
    free(dp);

    em_plugin_rec rec = {0};
    em_registry reg = {&rec};
    char mname[64];
    em_param_decl decl[2] = {{"lr", EM_PARAM_FLOAT, "0.1"}, {"x", EM_PARAM_INT, NULL}};
    em_module_ops mo = {0};
    size_t msize = take_size(&r, sizeof mo);
    mo.name = take_str(&r, mname);
    mo.nparams = (int)(take_u32(&r) % 4) - 1;
    mo.params = (bits & 32) ? decl : NULL;
    mo.state_size = take_u32(&r);
    mo.ninputs = (int)(take_u32(&r) % 11) - 1;
    mo.init = (bits & 64) ? module_init_stub : NULL;
    mo.forward = (bits & 128) ? forward_stub : NULL;
    em_module_ops *mp = exact_copy(&mo, sizeof mo, msize);
    em_clear_error();
    if (em_register_module(&reg, mp) < 0)
        FUZZ_CHECK_MESSAGE("em_register_module");
    em__module_types_forget(&rec);
    free(mp);

    char oname[64];
    em_optimizer_ops oo = {0};
    size_t osize = take_size(&r, sizeof oo);
    oo.name = take_str(&r, oname);
    oo.nparams = (int)(take_u32(&r) % 4) - 1;
    oo.params = (bits & 256) ? decl : NULL;
    oo.state_size = take_u32(&r);
    oo.init = (bits & 512) ? optim_init_stub : NULL;
    oo.step = (bits & 1024) ? step_stub : NULL;
    em_optimizer_ops *op = exact_copy(&oo, sizeof oo, osize);
    em_clear_error();
    if (em_register_optimizer(&reg, op) < 0)
        FUZZ_CHECK_MESSAGE("em_register_optimizer");
    em__optim_types_forget(&rec);
    free(op);
    return 0;
}

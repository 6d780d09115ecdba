/* tests/optim/test_checkpoints.c - safetensors checkpoints of modules and optimizers: round
 * trips, the file format (read back with a reader of our own), and bad input - another
 * architecture, missing and unexpected keys, truncated and corrupted files - which must fail
 * with an error naming the key and load nothing; writes that are atomic. */
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

static char dir[512];

static void setup(void)
{
    opt_setup();
    opt_tmpdir(dir, sizeof dir);
}

static void teardown(void)
{
    chmod(dir, 0700);
    opt_rmdir(dir);
    opt_teardown();
}

TestSuite(checkpoints, .init = setup, .fini = teardown);

static const char *path_in(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void save_ok(const em_module *m, const char *path)
{
    cr_assert_eq(em_module_save(m, path), EM_OK, "em_module_save: %s", em_last_error());
}

/* Asserts em_module_load fails with `want` in the error and leaves m as it was. */
static void assert_load_fails(em_module *m, const char *path, const char *want)
{
    int64_t n;
    double *before = opt_snapshot(m, &n);
    int rc = em_module_load(m, path);
    cr_assert_lt(rc, 0, "loading %s succeeded; expected \"%s\"", path, want);
    EMT_ASSERT_ERROR(want);
    opt_assert_unchanged(m, before, n);
    free(before);
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*size ? *size : 1);
    cr_assert_eq(fread(b, 1, *size, f), *size);
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *b, size_t size)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(b, 1, size, f), size);
    fclose(f);
}

/* Names in dir other than "." and "..", joined by spaces. */
static void list_dir(char *out, size_t size)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    out[0] = '\0';
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? " " : "", e->d_name);
    closedir(d);
}

#define NESTED(a0, a1, a2, a3, b, a, buf0, buf1)                                             \
    "TestParams(TestParams(a=[" #a0 ", " #a1 ", " #a2 ", " #a3 "], a_shape=[2, 2], b=[" #b   \
    "]), TestParams(a=[" #a "], buf=[" #buf0 ", " #buf1 "]))"

/* ---- modules ------------------------------------------------------------------------------------ */

Test(checkpoints, a_module_round_trip_restores_every_parameter_and_buffer)
{
    em_module *src = opt_module(NESTED(1, 2, 3, 4, 5, 6, 7, 8));
    em_module *dst = opt_module(NESTED(0, 0, 0, 0, 0, 0, 0, 0));
    cr_assert_eq(em_module_state_count(src), 4);
    cr_assert_str_eq(em_module_state_name(src, 0), "0.a");
    cr_assert_str_eq(em_module_state_name(src, 3), "1.buf");
    em_tensor *handle = em_module_get(dst, "0.a");
    save_ok(src, path_in("m.safetensors"));
    cr_assert_eq(em_module_load(dst, path_in("m.safetensors")), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_module_get(dst, "0.a"), 0, 1, 2, 3, 4);
    EMT_ASSERT_LIST(em_module_get(dst, "0.b"), 0, 5);
    EMT_ASSERT_LIST(em_module_get(dst, "1.a"), 0, 6);
    EMT_ASSERT_LIST(em_module_get(dst, "1.buf"), 0, 7, 8);
    cr_assert_eq(em_module_get(dst, "0.a"), handle, "loading keeps the handles");
    cr_assert(em_is_leaf(handle) && em_requires_grad(handle));
    cr_assert_null(em_grad_fn_name(handle), "loading records no graph");
    em_module_free(src);
    em_module_free(dst);
}

Test(checkpoints, the_file_is_safetensors_with_state_dict_names)
{
    em_module *m = opt_module(NESTED(1, 2, 3, 4, 5, 6, 7, 8));
    save_ok(m, path_in("m.safetensors"));
    opt_st f;
    opt_st_read(&f, path_in("m.safetensors"));
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f.bytes[i];
    cr_assert_eq(hlen % 8, 0, "the header is padded to 8 bytes");
    json_t *e = json_object_get(f.hdr, "0.a");
    cr_assert_str_eq(json_string_value(json_object_get(e, "dtype")), "F32");
    json_t *shape = json_object_get(e, "shape");
    cr_assert_eq(json_array_size(shape), 2);
    cr_assert_eq(json_integer_value(json_array_get(shape, 0)), 2);
    cr_assert_eq(json_integer_value(json_array_get(shape, 1)), 2);
    static const char *const keys[] = {"0.a", "0.b", "1.a", "1.buf"};
    static const double want[][4] = {{1, 2, 3, 4}, {5}, {6}, {7, 8}};
    size_t total = 0;
    for (int k = 0; k < 4; k++) {
        int64_t n;
        double *v = opt_st_values(&f, keys[k], &n);
        for (int64_t i = 0; i < n; i++)
            cr_assert_eq(v[i], want[k][i], "%s[%lld]", keys[k], (long long)i);
        total += (size_t)n * 4;
        free(v);
    }
    cr_assert_eq(json_object_size(f.hdr), 5, "four tensors and __metadata__");
    cr_assert_eq(f.size, 8 + hlen + total, "the data section holds exactly the tensors");
    json_t *meta = json_object_get(f.hdr, "__metadata__");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "format")), "pt");
    opt_st_free(&f);
    em_module_free(m);
}

Test(checkpoints, a_float32_file_loads_into_a_float64_module)
{
    em_module *src = opt_module("TestParams(a=[0.1, 0.2])");
    em_module *dst = opt_module("TestParams(a=[0, 0], dtype=\"float64\")");
    save_ok(src, path_in("m.safetensors"));
    cr_assert_eq(em_module_load(dst, path_in("m.safetensors")), EM_OK, "%s", em_last_error());
    EMT_ASSERT_DTYPE(em_module_get(dst, "a"), EM_F64);
    EMT_ASSERT_LIST(em_module_get(dst, "a"), 0, (double)0.1f, (double)0.2f);
    em_module_free(src);
    em_module_free(dst);
}

Test(checkpoints, a_checkpoint_of_another_architecture_is_refused_naming_the_key)
{
    em_module *src = opt_module("TestParams(a=[1, 2], b=[3, 4, 5, 6], b_shape=[2, 2])");
    save_ok(src, path_in("m.safetensors"));
    /* "a" would fit, "b" does not: nothing may be written, not even "a" */
    em_module *dst = opt_module("TestParams(a=[9, 9], b=[9, 9, 9, 9])");
    assert_load_fails(dst, path_in("m.safetensors"), "key 'b' has shape [2, 2] in the file but [4]");
    em_module_free(dst);
    dst = opt_module(NESTED(0, 0, 0, 0, 0, 0, 0, 0));
    assert_load_fails(dst, path_in("m.safetensors"), "missing key '0.a'");
    em_module_free(dst);
    em_module_free(src);
}

Test(checkpoints, a_missing_key_is_named_and_nothing_is_loaded)
{
    em_module *src = opt_module("TestParams(a=[1, 2])");
    save_ok(src, path_in("m.safetensors"));
    em_module *dst = opt_module("TestParams(a=[9, 9], b=[9])");
    assert_load_fails(dst, path_in("m.safetensors"), "missing key 'b'");
    em_module_free(dst);
    em_module_free(src);
}

Test(checkpoints, an_unexpected_key_is_named_and_nothing_is_loaded)
{
    em_module *src = opt_module("TestParams(a=[1, 2], buf=[3])");
    save_ok(src, path_in("m.safetensors"));
    em_module *dst = opt_module("TestParams(a=[9, 9])");
    assert_load_fails(dst, path_in("m.safetensors"), "unexpected key 'buf'");
    em_module_free(dst);
    em_module_free(src);
}

Test(checkpoints, a_truncated_file_is_refused_and_nothing_is_loaded)
{
    em_module *src = opt_module("TestParams(a=[1, 2, 3, 4, 5, 6], b=[7, 8])");
    save_ok(src, path_in("m.safetensors"));
    size_t size;
    unsigned char *b = read_file(path_in("m.safetensors"), &size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b[i];
    em_module *dst = opt_module("TestParams(a=[0, 0, 0, 0, 0, 0], b=[0, 0])");
    const struct {
        size_t len;
        const char *want;
    } cuts[] = {
        {0, "not a safetensors file (0 bytes; truncated?)"},
        {5, "not a safetensors file (5 bytes; truncated?)"},
        {8 + hlen / 2, "does not fit"},
        {8 + hlen, "truncated or corrupted"},
        {size - 1, "truncated or corrupted"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        EMT_CONTEXT("cut at %zu of %zu bytes", cuts[i].len, size);
        write_file(path_in("cut.safetensors"), b, cuts[i].len);
        assert_load_fails(dst, path_in("cut.safetensors"), cuts[i].want);
    }
    free(b);
    em_module_free(dst);
    em_module_free(src);
}

/* Replaces the first `from` in the file's header by `to` (same length). */
static void patch_header(const char *path, const char *from, const char *to)
{
    size_t size;
    unsigned char *b = read_file(path, &size);
    cr_assert_eq(strlen(from), strlen(to));
    unsigned char *p = memmem(b, size, from, strlen(from));
    cr_assert_not_null(p, "no \"%s\" in %s", from, path);
    memcpy(p, to, strlen(to));
    write_file(path, b, size);
    free(b);
}

Test(checkpoints, a_corrupted_header_is_refused_and_nothing_is_loaded)
{
    em_module *src = opt_module("TestParams(a=[1, 2, 3], b=[4])");
    em_module *dst = opt_module("TestParams(a=[0, 0, 0], b=[0])");
    const char *p = path_in("bad.safetensors");
    const struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"a\":{", "\"a\";{", "bad header JSON"},
        {"\"F32\"", "\"F99\"", "unsupported dtype 'F99'"},
        {"\"shape\":[3]", "\"shape\":[5]", "key 'a'"},
        {"\"data_offsets\":[0,12]", "\"data_offsets\":[4,12]", "key 'a': data_offsets [4, 12]"},
        {"\"data_offsets\":[12,16]", "\"data_offsets\":[12,99]", "key 'b': data_offsets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EMT_CONTEXT("%s -> %s", cases[i].from, cases[i].to);
        save_ok(src, p);
        patch_header(p, cases[i].from, cases[i].to);
        assert_load_fails(dst, p, cases[i].want);
    }
    /* a header length past the end of the file */
    save_ok(src, p);
    size_t size;
    unsigned char *b = read_file(p, &size);
    b[6] = 0x7f;
    write_file(p, b, size);
    free(b);
    assert_load_fails(dst, p, "header length");
    /* not JSON at all */
    write_file(p, "\x08\0\0\0\0\0\0\0garbage!", 16);
    assert_load_fails(dst, p, "bad header JSON");
    em_module_free(dst);
    em_module_free(src);
}

Test(checkpoints, a_missing_file_is_an_error_naming_it)
{
    em_module *m = opt_module("TestParams(a=[1])");
    assert_load_fails(m, path_in("nope.safetensors"), "nope.safetensors: cannot open");
    em_module_free(m);
}

/* ---- atomic writes ---------------------------------------------------------------------------------- */

Test(checkpoints, a_write_leaves_no_temporary_file_behind)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    save_ok(m, path_in("m.safetensors"));
    char names[1024];
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "m.safetensors");
    /* overwriting replaces the content, again without leftovers */
    em_module *m2 = opt_module("TestParams(a=[3, 4])");
    save_ok(m2, path_in("m.safetensors"));
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "m.safetensors");
    cr_assert_eq(em_module_load(m, path_in("m.safetensors")), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_module_get(m, "a"), 0, 3, 4);
    em_module_free(m2);
    em_module_free(m);
}

Test(checkpoints, a_checkpoint_gets_the_mode_of_a_plain_file)
{
    /* a new file: 0666 less the umask (not mkstemp's 0600); an existing one keeps its mode */
    em_module *m = opt_module("TestParams(a=[1, 2])");
    mode_t mask = umask(0);
    umask(mask);
    const char *p = path_in("m.safetensors");
    save_ok(m, p);
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0666 & ~mask, "mode %o with umask %o", st.st_mode & 0777,
                 mask);
    cr_assert_eq(chmod(p, 0640), 0);
    save_ok(m, p);
    cr_assert_eq(stat(p, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0640, "mode %o", st.st_mode & 0777);
    em_module_free(m);
}

Test(checkpoints, a_write_into_a_missing_directory_fails_and_creates_nothing)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    cr_assert_lt(em_module_save(m, path_in("no/such/dir/m.safetensors")), 0);
    EMT_ASSERT_ERROR("cannot create a temporary file");
    char names[1024];
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "");
    em_module_free(m);
}

Test(checkpoints, a_failed_write_leaves_the_target_untouched)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    const char *p = path_in("m.safetensors");
    save_ok(m, p);
    size_t size;
    unsigned char *before = read_file(p, &size);
    cr_assert_eq(chmod(dir, 0500), 0);
    if (access(dir, W_OK) == 0) {
        free(before);
        em_module_free(m);
        teardown();   /* a skipped test does not run the suite's fini */
        cr_skip_test("directory permissions are not enforced for this user (root?): a "
                     "read-only directory cannot make the write fail");
    }
    em_module *m2 = opt_module("TestParams(a=[3, 4])");
    cr_assert_lt(em_module_save(m2, p), 0, "saving into a read-only directory succeeded");
    EMT_ASSERT_ERROR("m.safetensors");
    chmod(dir, 0700);
    size_t size2;
    unsigned char *after = read_file(p, &size2);
    cr_assert(size == size2 && !memcmp(before, after, size), "the target changed");
    char names[1024];
    list_dir(names, sizeof names);
    cr_assert_str_eq(names, "m.safetensors");
    free(before);
    free(after);
    em_module_free(m2);
    em_module_free(m);
}

/* ---- optimizers --------------------------------------------------------------------------------- */

static void grads_for_step(em_module *m, int k)
{
    static const double ga[3][3] = {{0.5, -1, 2}, {0.1, 0.3, -0.2}, {-0.4, 0.05, 0.02}};
    static const double gb[3][1] = {{1}, {-2}, {0.5}};
    opt_set_grad(em_module_get(m, "a"), ga[k]);
    opt_set_grad(em_module_get(m, "b"), gb[k]);
}

/* One more step (the third) on two models with optimizers gives both the same parameters. */
static void assert_same_next_step(em_module *ma, em_optimizer *oa, em_module *mb,
                                  em_optimizer *ob)
{
    grads_for_step(ma, 2);
    grads_for_step(mb, 2);
    cr_assert_eq(em_step(oa), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_step(ob), EM_OK, "%s", em_last_error());
    int64_t n;
    double *want = opt_snapshot(ma, &n);
    opt_assert_unchanged(mb, want, n);
    free(want);
}

Test(checkpoints, an_optimizer_round_trip_restores_steps_lr_and_state)
{
    static const char *const specs[] = {"SGD(lr=0.1, momentum=0.9)", "Adam(lr=0.01, amsgrad=true)",
                                        "AdamW(lr=0.01)", "RMSprop(momentum=0.5, centered=true)"};
    for (size_t c = 0; c < sizeof specs / sizeof specs[0]; c++) {
        EMT_CONTEXT("%s", specs[c]);
        em_module *ma = opt_module("TestParams(a=[1, -2, 3], b=[0.5], dtype=\"float64\")");
        em_optimizer *oa = opt_optimizer(specs[c], ma);
        for (int k = 0; k < 2; k++) {
            grads_for_step(ma, k);
            cr_assert_eq(em_step(oa), EM_OK, "%s", em_last_error());
        }
        cr_assert_eq(em_optimizer_set_lr(oa, 0.05), EM_OK);
        save_ok(ma, path_in("model.safetensors"));
        cr_assert_eq(em_optimizer_save(oa, path_in("optim.safetensors")), EM_OK, "%s",
                     em_last_error());

        /* a fresh process, in effect: new module and optimizer, then both checkpoints */
        em_module *mb = opt_module("TestParams(a=[0, 0, 0], b=[0], dtype=\"float64\")");
        em_optimizer *ob = opt_optimizer(specs[c], mb);
        cr_assert_eq(em_module_load(mb, path_in("model.safetensors")), EM_OK, "%s",
                     em_last_error());
        cr_assert_eq(em_optimizer_load(ob, path_in("optim.safetensors")), EM_OK, "%s",
                     em_last_error());
        cr_assert_eq(em_optimizer_steps(ob), 2);
        cr_assert_float_eq(em_optimizer_lr(ob), 0.05, 0);
        static const char *const slots[] = {"momentum_buffer", "exp_avg", "exp_avg_sq",
                                            "max_exp_avg_sq", "square_avg", "grad_avg"};
        for (int i = 0; i < 2; i++)
            for (size_t k = 0; k < sizeof slots / sizeof slots[0]; k++) {
                em_tensor *sa = em_optimizer_slot(oa, i, slots[k]);
                em_tensor *sb = em_optimizer_slot(ob, i, slots[k]);
                cr_assert_eq(sa == NULL, sb == NULL, "slot %s of parameter %d", slots[k], i);
                if (sa) {
                    double *v = emt_values(sa);
                    EMT_ASSERT_VALUES(sb, 0, v, em_numel(sa));
                    EMT_ASSERT_DTYPE(sb, EM_F64);
                    free(v);
                }
            }
        /* the next step is the same on both, bias corrections included */
        assert_same_next_step(ma, oa, mb, ob);
        em_optimizer_free(oa);
        em_optimizer_free(ob);
        em_module_free(ma);
        em_module_free(mb);
    }
}

/* em_module_load_bytes and em_optimizer_load_bytes read the same image from memory: the
 * result equals the file's, and a bad image is refused by the name given, changing nothing. */
Test(checkpoints, an_image_in_memory_loads_as_its_file_does)
{
    em_module *ma = opt_module("TestParams(a=[1, -2, 3], b=[0.5], dtype=\"float64\")");
    em_optimizer *oa = opt_optimizer("Adam(lr=0.01)", ma);
    for (int k = 0; k < 2; k++) {
        grads_for_step(ma, k);
        cr_assert_eq(em_step(oa), EM_OK, "%s", em_last_error());
    }
    save_ok(ma, path_in("model.safetensors"));
    cr_assert_eq(em_optimizer_save(oa, path_in("optim.safetensors")), EM_OK, "%s",
                 em_last_error());
    size_t msize, osize;
    unsigned char *mimg = read_file(path_in("model.safetensors"), &msize);
    unsigned char *oimg = read_file(path_in("optim.safetensors"), &osize);

    em_module *mb = opt_module("TestParams(a=[0, 0, 0], b=[0], dtype=\"float64\")");
    em_optimizer *ob = opt_optimizer("Adam(lr=0.01)", mb);
    int64_t n;
    double *zeros = opt_snapshot(mb, &n);
    /* truncated, empty, missing: refused by name, nothing changes */
    cr_assert_lt(em_module_load_bytes(mb, mimg, msize / 2, "rank 0's last.safetensors"), 0);
    cr_assert(strstr(em_last_error(), "rank 0's last.safetensors"), "%s", em_last_error());
    cr_assert_lt(em_module_load_bytes(mb, mimg, 3, NULL), 0);
    cr_assert(strstr(em_last_error(), "(bytes)"), "%s", em_last_error());
    cr_assert_lt(em_module_load_bytes(mb, NULL, msize, "x"), 0);
    cr_assert_lt(em_optimizer_load_bytes(ob, oimg, osize - 1, "optim image"), 0);
    cr_assert(strstr(em_last_error(), "optim image"), "%s", em_last_error());
    opt_assert_unchanged(mb, zeros, n);
    cr_assert_eq(em_optimizer_steps(ob), 0);

    cr_assert_eq(em_module_load_bytes(mb, mimg, msize, "model"), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_load_bytes(ob, oimg, osize, "optim"), EM_OK, "%s",
                 em_last_error());
    cr_assert_eq(em_optimizer_steps(ob), 2);
    /* the image is borrowed only for the call */
    memset(mimg, 0, msize);
    memset(oimg, 0, osize);
    assert_same_next_step(ma, oa, mb, ob);
    free(zeros);
    free(mimg);
    free(oimg);
    em_optimizer_free(oa);
    em_optimizer_free(ob);
    em_module_free(ma);
    em_module_free(mb);
}

Test(checkpoints, loading_older_optimizer_state_rewinds_the_bias_correction)
{
    /* Save after one step, take two more, load: the next step must be step 2 again. */
    em_module *m = opt_module("TestParams(a=[1, -2, 3], b=[0.5], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("Adam(lr=0.01)", m);
    grads_for_step(m, 0);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    save_ok(m, path_in("model.safetensors"));
    cr_assert_eq(em_optimizer_save(o, path_in("optim.safetensors")), EM_OK, "%s", em_last_error());
    grads_for_step(m, 1);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    grads_for_step(m, 2);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_module_load(m, path_in("model.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_load(o, path_in("optim.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_steps(o), 1);
    grads_for_step(m, 1);
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());

    em_module *r = opt_module("TestParams(a=[1, -2, 3], b=[0.5], dtype=\"float64\")");
    em_optimizer *ro = opt_optimizer("Adam(lr=0.01)", r);
    for (int k = 0; k < 2; k++) {
        grads_for_step(r, k);
        cr_assert_eq(em_step(ro), EM_OK, "%s", em_last_error());
    }
    int64_t n;
    double *want = opt_snapshot(r, &n);
    opt_assert_unchanged(m, want, n);
    free(want);
    em_optimizer_free(ro);
    em_module_free(r);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(checkpoints, optimizer_files_hold_state_dot_param_dot_slot_and_the_step_count)
{
    em_module *m = opt_module("TestParams(TestParams(a=[1, 2]), TestParams(b=[3]))");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    opt_set_grad(em_module_get(m, "0.a"), EMT_VALS(1, 2));
    opt_set_grad(em_module_get(m, "1.b"), EMT_VALS(3));
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_save(o, path_in("o.safetensors")), EM_OK, "%s", em_last_error());
    opt_st f;
    opt_st_read(&f, path_in("o.safetensors"));
    int64_t n;
    double *v = opt_st_values(&f, "state.0.a.momentum_buffer", &n);
    cr_assert_eq(n, 2);
    cr_assert(v[0] == 1 && v[1] == 2);
    free(v);
    v = opt_st_values(&f, "state.1.b.momentum_buffer", &n);
    cr_assert(n == 1 && v[0] == 3);
    free(v);
    json_t *meta = json_object_get(f.hdr, "__metadata__");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "steps")), "1");
    cr_assert_str_eq(json_string_value(json_object_get(meta, "lr")), "0.10000000000000001");
    opt_st_free(&f);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(checkpoints, an_optimizer_refuses_state_that_does_not_fit)
{
    em_module *m3 = opt_module("TestParams(a=[1, 2, 3])");
    em_optimizer *o3 = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m3);
    opt_set_grad(em_module_get(m3, "a"), EMT_VALS(1, 1, 1));
    cr_assert_eq(em_step(o3), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_save(o3, path_in("o3.safetensors")), EM_OK, "%s", em_last_error());
    save_ok(m3, path_in("m3.safetensors"));

    em_module *m2 = opt_module("TestParams(a=[1, 2])");
    em_optimizer *o2 = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m2);
    cr_assert_lt(em_optimizer_load(o2, path_in("o3.safetensors")), 0);
    EMT_ASSERT_ERROR("key 'state.a.momentum_buffer' does not have its parameter's shape");
    cr_assert_null(em_optimizer_slot(o2, 0, "momentum_buffer"), "nothing was installed");
    cr_assert_eq(em_optimizer_steps(o2), 0);

    em_module *mb = opt_module("TestParams(b=[1, 2, 3])");
    em_optimizer *ob = opt_optimizer("SGD(lr=0.1, momentum=0.9)", mb);
    cr_assert_lt(em_optimizer_load(ob, path_in("o3.safetensors")), 0);
    EMT_ASSERT_ERROR("key 'state.a.momentum_buffer' matches no parameter");

    cr_assert_lt(em_optimizer_load(o3, path_in("m3.safetensors")), 0);
    EMT_ASSERT_ERROR("not an Ember optimizer checkpoint");
    em_optimizer_free(ob);
    em_module_free(mb);
    em_optimizer_free(o2);
    em_module_free(m2);
    em_optimizer_free(o3);
    em_module_free(m3);
}

Test(checkpoints, loading_replaces_the_whole_optimizer_state)
{
    /* State saved before any step has no buffers: loading it into a trained optimizer must
     * drop the trained buffers too (PyTorch's load_state_dict replaces the state). */
    em_module *m = opt_module("TestParams(a=[1, 2], b=[3], dtype=\"float64\")");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    save_ok(m, path_in("m0.safetensors"));
    cr_assert_eq(em_optimizer_save(o, path_in("o0.safetensors")), EM_OK, "%s", em_last_error());
    for (int k = 0; k < 2; k++) {
        opt_set_grad(em_module_get(m, "a"), EMT_VALS(1, 1));
        opt_set_grad(em_module_get(m, "b"), EMT_VALS(1));
        cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    }
    cr_assert_not_null(em_optimizer_slot(o, 0, "momentum_buffer"));
    cr_assert_eq(em_module_load(m, path_in("m0.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_load(o, path_in("o0.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_steps(o), 0);
    cr_assert_null(em_optimizer_slot(o, 0, "momentum_buffer"));
    cr_assert_null(em_optimizer_slot(o, 1, "momentum_buffer"));
    /* so the next step is a first step again: buf = g, a = [1, 2] - 0.1 */
    opt_set_grad(em_module_get(m, "a"), EMT_VALS(1, 1));
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_module_get(m, "a"), 1e-15, 0.9, 1.9);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(checkpoints, an_optimizer_file_with_bad_metadata_is_refused)
{
    em_module *m = opt_module("TestParams(a=[1, 2])");
    em_optimizer *o = opt_optimizer("SGD(lr=0.1, momentum=0.9)", m);
    opt_set_grad(em_module_get(m, "a"), EMT_VALS(1, 1));
    cr_assert_eq(em_step(o), EM_OK, "%s", em_last_error());
    const char *p = path_in("o.safetensors");
    cr_assert_eq(em_optimizer_save(o, p), EM_OK, "%s", em_last_error());
    patch_header(p, "\"steps\":\"1\"", "\"steps\":\"x\"");
    cr_assert_eq(em_optimizer_set_lr(o, 0.5), EM_OK);
    cr_assert_lt(em_optimizer_load(o, p), 0);
    EMT_ASSERT_ERROR("bad metadata: steps \"x\"");
    cr_assert_eq(em_optimizer_steps(o), 1);
    cr_assert_float_eq(em_optimizer_lr(o), 0.5, 0);
    EMT_ASSERT_LIST(em_optimizer_slot(o, 0, "momentum_buffer"), 0, 1, 1);
    em_optimizer_free(o);
    em_module_free(m);
}

Test(checkpoints, loaded_adam_state_brings_its_step_count_to_a_parameter_without_one)
{
    /* R steps a and b twice and saves. Q steps only a twice (b has no state, no count), then
     * loads R's checkpoint, whose step count equals Q's: b's bias correction must continue
     * from R's count (step 3), not start at 1. */
    const char *spec = "TestParams(a=[1, -2, 3], b=[0.5], dtype=\"float64\")";
    em_module *r = opt_module(spec), *q = opt_module(spec);
    em_optimizer *ro = opt_optimizer("Adam(lr=0.01)", r), *qo = opt_optimizer("Adam(lr=0.01)", q);
    for (int k = 0; k < 2; k++) {
        grads_for_step(r, k);
        cr_assert_eq(em_step(ro), EM_OK, "%s", em_last_error());
        cr_assert_eq(em_zero_grad(qo), EM_OK);
        opt_set_grad(em_module_get(q, "a"), EMT_VALS(1, 1, 1));
        cr_assert_eq(em_step(qo), EM_OK, "%s", em_last_error());
    }
    cr_assert_null(em_optimizer_slot(qo, 1, "exp_avg"));
    save_ok(r, path_in("r.safetensors"));
    cr_assert_eq(em_optimizer_save(ro, path_in("ro.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_module_load(q, path_in("r.safetensors")), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_optimizer_load(qo, path_in("ro.safetensors")), EM_OK, "%s", em_last_error());
    assert_same_next_step(r, ro, q, qo);
    em_optimizer_free(ro);
    em_optimizer_free(qo);
    em_module_free(r);
    em_module_free(q);
}

/* tests/data/test_datasets.c - datasets: the tutorial's CustomDataset written in C, spec-built
 * and tensor datasets, random_split, standardisation with statistics from a training split. */
#include "helpers.h"

TestSuite(datasets, .init = emd_setup, .fini = emd_teardown);

/* ---- the tutorial's CustomDataset, in C ----------------------------------------------------- */

/* feature1..3 and label of row i, as the CSV written by write_tutorial_csv holds them. */
static void tutorial_row(int i, double f[3], int64_t *label)
{
    f[0] = 0.5 * i;
    f[1] = i + 1;
    f[2] = -i;
    *label = i % 3;
}

static const char *write_tutorial_csv(int rows)
{
    char text[4096];
    size_t n = (size_t)snprintf(text, sizeof text, "feature1,feature2,feature3,label\n");
    for (int i = 0; i < rows; i++) {
        double f[3];
        int64_t l;
        tutorial_row(i, f, &l);
        n += (size_t)snprintf(text + n, sizeof text - n, "%g,%g,%g,%lld\n", f[0], f[1], f[2],
                              (long long)l);
    }
    return emd_write("data.csv", text);
}

/* class CustomDataset(Dataset): __init__ reads the CSV, __len__, __getitem__. */
typedef struct custom {
    int64_t n;
    float (*x)[3];
    int64_t *y;
    em_device cpu;
} custom;

static int destroyed;

static custom *custom_init(const char *path)
{
    custom *c = calloc(1, sizeof *c);
    FILE *f = fopen(path, "r");
    cr_assert(c && f);
    char line[256];
    cr_assert_not_null(fgets(line, sizeof line, f));   /* the header */
    float a, b, d;
    long long l;
    while (fscanf(f, "%f,%f,%f,%lld", &a, &b, &d, &l) == 4) {
        c->x = realloc(c->x, (size_t)(c->n + 1) * sizeof *c->x);
        c->y = realloc(c->y, (size_t)(c->n + 1) * sizeof *c->y);
        c->x[c->n][0] = a;
        c->x[c->n][1] = b;
        c->x[c->n][2] = d;
        c->y[c->n++] = l;
    }
    fclose(f);
    c->cpu = em_device_parse("cpu");
    return c;
}

static int64_t custom_len(void *ctx) { return ((custom *)ctx)->n; }

/* x = torch.tensor(self.x[index].reshape(1, -1), dtype=torch.float32); y = self.y[index] */
static int custom_get_item(void *ctx, int64_t i, em_tensor **x, em_tensor **y)
{
    custom *c = ctx;
    em_opts o = {.device = c->cpu};
    *x = em_tensor_from_data(c->x[i], EM_F32, EM_SHAPE(1, 3), &o);
    *y = em_tensor_from_data(&c->y[i], EM_I64, EM_SHAPE(1), &o);
    return *x && *y ? EM_OK : em_last_status();
}

static void custom_destroy(void *ctx)
{
    custom *c = ctx;
    free(c->x);
    free(c->y);
    free(c);
    destroyed++;
}

static const em_dataset_ops custom_ops = {sizeof(em_dataset_ops), custom_len, custom_get_item,
                                          custom_destroy};

Test(datasets, the_tutorial_custom_dataset_written_in_c_gives_its_samples)
{
    em_dataset *d = em_dataset_from_ops(&custom_ops, custom_init(write_tutorial_csv(10)));
    cr_assert_not_null(d, "%s", em_last_error());
    cr_assert_eq(em_dataset_len(d), 10);
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, 7, &x, &y), EM_OK, "%s", em_last_error());
    EMT_ASSERT_SHAPE(x, EM_SHAPE(1, 3));
    EMT_ASSERT_LIST(x, 0, 3.5, 8, -7);
    EMT_ASSERT_DTYPE(y, EM_I64);
    EMT_ASSERT_LIST(y, 0, 1);
    em_release(x);
    em_release(y);
    cr_assert_eq(em_dataset_get(d, 10, &x, &y), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("em_dataset_get: index 10 out of range for a dataset of 10 samples");
    cr_assert_null(x);
    char *s = em_dataset_str(d);
    cr_assert_str_eq(s, "Dataset(user)");
    free(s);
    em_dataset_free(d);
    cr_assert_eq(destroyed, 1, "destroy ran %d times", destroyed);
}

Test(datasets, the_tutorial_dataloader_stacks_custom_samples_like_default_collate)
{
    /* train_dataloader = DataLoader(training_data, batch_size=4); features, label = next(..):
     * torch's default_collate stacks (1, 3) samples to (4, 1, 3) and (1,) labels to (4, 1). */
    em_dataset *d = em_dataset_from_ops(&custom_ops, custom_init(write_tutorial_csv(10)));
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    cr_assert_not_null(dl, "%s", em_last_error());
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    EMT_ASSERT_SHAPE(x, EM_SHAPE(4, 1, 3));
    EMT_ASSERT_SHAPE(y, EM_SHAPE(4, 1));
    EMT_ASSERT_LIST(x, 0, 0, 1, 0, 0.5, 2, -1, 1, 3, -2, 1.5, 4, -3);
    EMT_ASSERT_LIST(y, 0, 0, 1, 2, 0);
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(datasets, the_csv_type_reads_the_tutorial_file_like_the_custom_dataset)
{
    const char *path = write_tutorial_csv(10);
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s\", features=[\"feature1\", \"feature2\", "
                                    "\"feature3\"], label=\"label\")",
                                    path));
    cr_assert_eq(em_dataset_len(d), 10);
    for (int i = 0; i < 10; i++) {
        em_tensor *x, *y;
        cr_assert_eq(em_dataset_get(d, i, &x, &y), EM_OK, "%s", em_last_error());
        double f[3];
        int64_t l;
        tutorial_row(i, f, &l);
        EMT_ASSERT_SHAPE(x, EM_SHAPE(3));
        EMT_ASSERT_DTYPE(x, EM_F32);
        EMT_ASSERT_VALUES(x, 0, f, 3);
        EMT_ASSERT_SHAPE(y, EM_SCALAR);
        EMT_ASSERT_DTYPE(y, EM_I64);
        cr_assert_eq((int64_t)em_item(y), l);
        em_release(x);
        em_release(y);
    }
    char *s = em_dataset_str(d);
    cr_assert(strstr(s, "CSV(\"") == s && strstr(s, "features=[\"feature1\""), "%s", s);
    free(s);
    em_dataset_free(d);
}

Test(datasets, a_user_dataset_is_destroyed_once_after_its_last_handle)
{
    em_dataset *d = em_dataset_from_ops(&custom_ops, custom_init(write_tutorial_csv(10)));
    em_dataset *parts[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.5, 0.5}, 1, parts), EM_OK);
    em_dataloader *dl = em_dataloader_new(parts[0], 2, true, 1);
    em_dataset_free(d);
    em_dataset_free(parts[0]);
    cr_assert_eq(destroyed, 0);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    cr_assert_eq(destroyed, 0, "parts[1] still holds the data");
    em_dataset_free(parts[1]);
    cr_assert_eq(destroyed, 1);
}

Test(datasets, an_incomplete_vtable_is_refused)
{
    em_dataset_ops ops = {sizeof ops, custom_len, NULL, NULL};
    cr_assert_null(em_dataset_from_ops(&ops, NULL));
    EMT_ASSERT_ERROR("em_dataset_from_ops: the table needs struct_size, len and get_item");
}

/* ---- TensorDataset ---------------------------------------------------------------------------- */

Test(datasets, a_tensor_dataset_shares_contiguous_cpu_tensors, .init = emt_pin_cpu)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(3, 2), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *y = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(2, 0, 1));
    em_dataset *d = em_dataset_from_tensors(x, y);
    cr_assert_not_null(d, "%s", em_last_error());
    ((float *)em_data_ptr(x))[2] = 30;   /* shows through, as with torch's TensorDataset */
    em_tensor *xi, *yi;
    cr_assert_eq(em_dataset_get(d, 1, &xi, &yi), EM_OK);
    EMT_ASSERT_LIST(xi, 0, 30, 4);
    EMT_ASSERT_LIST(yi, 0, 0);
    em_release(xi);
    em_release(yi);
    em_sample_info info;
    cr_assert_eq(em_dataset_sample_info(d, &info), EM_OK);
    cr_assert_eq(info.x_ndim, 1);
    cr_assert_eq(info.x_shape[0], 2);
    cr_assert_eq(info.y_ndim, 0);
    cr_assert_eq(info.y_dtype, EM_I64);
    cr_assert_eq(info.num_classes, 3);
    char *s = em_dataset_str(d);
    cr_assert_str_eq(s, "TensorDataset(x=[3, 2] float32, y=[3] int64)");
    free(s);
    em_dataset_free(d);
    em_release(x);
    em_release(y);
}

Test(datasets, a_tensor_dataset_needs_matching_sample_counts)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(3, 2), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *y = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(0, 1));
    cr_assert_null(em_dataset_from_tensors(x, y));
    EMT_ASSERT_ERROR("em_dataset_from_tensors: x has 3 samples but y has 2 (x is [3, 2], y is "
                     "[2])");
    em_release(x);
    em_release(y);
}

Test(datasets, a_strided_tensor_is_copied_into_the_store)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *xt = EMT_OK(em_t(x));   /* (3, 2), not contiguous */
    em_dataset *d = em_dataset_from_tensors(xt, NULL);
    cr_assert_not_null(d, "%s", em_last_error());
    em_tensor *xi, *yi;
    cr_assert_eq(em_dataset_get(d, 2, &xi, &yi), EM_OK);
    EMT_ASSERT_LIST(xi, 0, 3, 6);
    cr_assert_null(yi, "an unlabeled dataset has no y");
    em_release(xi);
    em_dataset_free(d);
    em_release(xt);
    em_release(x);
}

/* ---- specs ------------------------------------------------------------------------------------ */

Test(datasets, an_unknown_dataset_type_suggests_the_closest_name)
{
    EMD_ASSERT_SPEC_FAILS("CVS(path=\"x.csv\")", "unknown dataset type 'CVS'; did you mean 'CSV'?");
    EMD_ASSERT_SPEC_FAILS("CSV(pth=\"x.csv\")", "CSV: unknown argument 'pth'; did you mean 'path'?");
}

Test(datasets, the_bundled_digits_file_loads_as_64_features_and_10_classes)
{
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s/digits.csv\", features=[\"pixel0:pixel63\"], "
                                    "scale=0.0625)",
                                    DATA_EXAMPLES_DIR));
    cr_assert_eq(em_dataset_len(d), 1797);
    em_sample_info info;
    cr_assert_eq(em_dataset_sample_info(d, &info), EM_OK);
    cr_assert_eq(info.x_ndim, 1);
    cr_assert_eq(info.x_shape[0], 64);
    cr_assert_eq(info.x_dtype, EM_F32);
    cr_assert_eq(info.num_classes, 10);
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, 0, &x, &y), EM_OK);
    /* first row: 0,0,5,13,9,1,0,0,... label 0 */
    double *v = emt_values(x);
    cr_assert_float_eq(v[2], 5.0 / 16, 0);
    cr_assert_float_eq(v[3], 13.0 / 16, 0);
    free(v);
    cr_assert_eq((int)em_item(y), 0);
    em_release(x);
    em_release(y);
    em_dataset_free(d);
}

/* ---- random_split ----------------------------------------------------------------------------- */

/* A dataset whose sample i is (x = [i], y = i), to see which samples a view holds. */
static em_dataset *indexed(int64_t n)
{
    em_tensor *x = EMT_OK(em_arange(0, (double)n, 1, &(em_opts){.dtype = EM_F32}));
    em_tensor *x2 = EMT_OK(em_reshape(x, EM_SHAPE(n, 1)));
    em_tensor *y = EMT_OK(em_arange(0, (double)n, 1, NULL));
    em_dataset *d = em_dataset_from_tensors(x2, y);
    cr_assert_not_null(d, "%s", em_last_error());
    em_release(x);
    em_release(x2);
    em_release(y);
    return d;
}

static int64_t label_of(em_dataset *d, int64_t i)
{
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, i, &x, &y), EM_OK, "%s", em_last_error());
    int64_t v = (int64_t)em_item(y);
    cr_assert_eq((int64_t)em_item(x), v, "x and y stay paired");
    em_release(x);
    em_release(y);
    return v;
}

Test(datasets, random_split_sizes_follow_pytorch_for_fractions_and_counts)
{
    em_dataset *d = indexed(10);
    em_dataset *p[3];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.8, 0.2}, 42, p), EM_OK);
    cr_assert_eq(em_dataset_len(p[0]), 8);
    cr_assert_eq(em_dataset_len(p[1]), 2);
    em_dataset_free(p[0]);
    em_dataset_free(p[1]);
    /* floor(3.3) = 3 each, and the one left over goes to the first part: 4, 3, 3 */
    cr_assert_eq(em_random_split(d, 3, (const double[]){0.33, 0.33, 0.34}, 42, p), EM_OK);
    cr_assert_eq(em_dataset_len(p[0]), 4);
    cr_assert_eq(em_dataset_len(p[1]), 3);
    cr_assert_eq(em_dataset_len(p[2]), 3);
    for (int k = 0; k < 3; k++)
        em_dataset_free(p[k]);
    cr_assert_eq(em_random_split(d, 2, (const double[]){7, 3}, 42, p), EM_OK);
    cr_assert_eq(em_dataset_len(p[0]), 7);
    cr_assert_eq(em_dataset_len(p[1]), 3);
    em_dataset_free(p[0]);
    em_dataset_free(p[1]);
    cr_assert_eq(em_random_split(d, 2, (const double[]){6, 3}, 42, p), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("em_random_split: sizes sum to 9, but the dataset has 10 samples");
    cr_assert_null(p[0]);
    em_dataset_free(d);
}

Test(datasets, random_split_parts_are_disjoint_and_cover_the_dataset)
{
    em_dataset *d = indexed(100);
    em_dataset *p[3];
    cr_assert_eq(em_random_split(d, 3, (const double[]){0.5, 0.3, 0.2}, 7, p), EM_OK);
    int seen[100] = {0};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < em_dataset_len(p[k]); i++)
            seen[label_of(p[k], i)]++;
    for (int i = 0; i < 100; i++)
        cr_assert_eq(seen[i], 1, "sample %d is in %d parts", i, seen[i]);
    /* not just the identity in slices */
    bool shuffled = false;
    for (int64_t i = 0; i < 50; i++)
        shuffled |= label_of(p[0], i) != i;
    cr_assert(shuffled);
    for (int k = 0; k < 3; k++)
        em_dataset_free(p[k]);
    em_dataset_free(d);
}

Test(datasets, random_split_is_a_function_of_the_seed)
{
    em_dataset *d = indexed(50);
    em_dataset *a[2], *b[2], *c[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.6, 0.4}, 123, a), EM_OK);
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.6, 0.4}, 123, b), EM_OK);
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.6, 0.4}, 124, c), EM_OK);
    bool differs = false;
    for (int64_t i = 0; i < 30; i++) {
        cr_assert_eq(label_of(a[0], i), label_of(b[0], i), "same seed, same split");
        differs |= label_of(a[0], i) != label_of(c[0], i);
    }
    cr_assert(differs, "another seed gives another split");
    /* the permutation is pinned: Philox 4x32-10, integer Fisher-Yates (same on every machine) */
    int64_t first[5];
    for (int i = 0; i < 5; i++)
        first[i] = label_of(a[0], i);
    em_dataset *e[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){30, 20}, 123, e), EM_OK);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(label_of(e[0], i), first[i], "counts and fractions deal the same way");
    for (int k = 0; k < 2; k++) {
        em_dataset_free(a[k]);
        em_dataset_free(b[k]);
        em_dataset_free(c[k]);
        em_dataset_free(e[k]);
    }
    em_dataset_free(d);
}

Test(datasets, a_split_of_a_split_maps_to_the_original_samples)
{
    em_dataset *d = indexed(20);
    em_dataset *p[2], *q[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){10, 10}, 1, p), EM_OK);
    cr_assert_eq(em_random_split(p[0], 2, (const double[]){5, 5}, 2, q), EM_OK);
    int in_p0[20] = {0};
    for (int64_t i = 0; i < 10; i++)
        in_p0[label_of(p[0], i)] = 1;
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < 5; i++)
            cr_assert(in_p0[label_of(q[k], i)], "a sample of the sub-split comes from p[0]");
    char *s = em_dataset_str(q[1]);
    cr_assert_str_eq(s, "Subset(TensorDataset(x=[20, 1] float32, y=[20] int64), 5)");
    free(s);
    em_dataset_free(d);
    for (int k = 0; k < 2; k++) {
        em_dataset_free(p[k]);
        em_dataset_free(q[k]);
    }
}

/* ---- standardisation ---------------------------------------------------------------------------- */

static const char *write_scaling_csv(void)
{
    /* a: 1..10; b: constant 5; c: squares */
    char text[1024];
    size_t n = (size_t)snprintf(text, sizeof text, "a,b,c,label\n");
    for (int i = 1; i <= 10; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "%d,5,%d,%d\n", i, i * i, i % 2);
    return emd_write("scale.csv", text);
}

Test(datasets, standardize_refuses_to_read_before_statistics_are_fitted)
{
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s\", standardize=true)", write_scaling_csv()));
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, 0, &x, &y), EM_ERR_STATE);
    EMT_ASSERT_ERROR("standardises its features with statistics from the training split: call "
                     "em_dataset_fit_scaler(dataset, train_split) before reading it");
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    cr_assert_not(em_dataloader_next(dl, &x, &y));
    cr_assert_eq(em_last_status(), EM_ERR_STATE);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(datasets, fit_scaler_takes_statistics_from_the_training_split_only)
{
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s\", standardize=true)", write_scaling_csv()));
    em_dataset *p[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.7, 0.3}, 3, p), EM_OK);
    cr_assert(em_dataset_needs_scaler(d) && em_dataset_needs_scaler(p[1]));
    cr_assert_eq(em_dataset_fit_scaler(d, p[0]), EM_OK, "%s", em_last_error());
    cr_assert_not(em_dataset_needs_scaler(p[1]), "the splits share the fitted data");
    /* expected statistics over the training rows (a = 1..10 by row, c = a^2) */
    double sum[3] = {0}, sq[3] = {0};
    int64_t rows[7];
    const float *mean, *std;
    cr_assert_eq(em_dataset_scaler(d, &mean, &std), 3);
    cr_assert_float_eq(std[1], 1.0f, 0, "a constant feature gets std 1");
    cr_assert_float_eq(mean[1], 5.0f, 0);
    /* reconstruct the raw training rows: a = x * std + mean */
    for (int i = 0; i < 7; i++) {
        em_tensor *x, *y;
        cr_assert_eq(em_dataset_get(p[0], i, &x, &y), EM_OK, "%s", em_last_error());
        double *v = emt_values(x);
        double a = v[0] * std[0] + mean[0];
        rows[i] = llround(a);
        cr_assert_float_eq(a, (double)rows[i], 1e-4);
        double raw[3] = {(double)rows[i], 5, (double)(rows[i] * rows[i])};
        for (int j = 0; j < 3; j++) {
            sum[j] += raw[j];
            sq[j] += raw[j] * raw[j];
        }
        free(v);
        em_release(x);
        em_release(y);
    }
    for (int j = 0; j < 3; j += 2) {
        double m = sum[j] / 7, sd = sqrt(sq[j] / 7 - m * m);
        cr_assert_float_eq(mean[j], m, 1e-4 * fabs(m), "mean of feature %d over the train rows", j);
        cr_assert_float_eq(std[j], sd, 1e-4 * sd, "population std of feature %d", j);
    }
    /* the test split is scaled with the training statistics */
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(p[1], 0, &x, &y), EM_OK);
    double *v = emt_values(x);
    double a = v[0] * std[0] + mean[0];
    cr_assert_float_eq(v[2], ((float)(llround(a) * llround(a)) - mean[2]) / std[2], 1e-5);
    cr_assert_float_eq(v[1], 0.0, 0);
    free(v);
    em_release(x);
    em_release(y);
    for (int k = 0; k < 2; k++)
        em_dataset_free(p[k]);
    em_dataset_free(d);
}

Test(datasets, refitting_replaces_statistics_and_set_scaler_reproduces_them)
{
    em_dataset *d = emd_new(emd_fmt("CSV(path=\"%s\")", write_scaling_csv()));
    cr_assert_eq(em_dataset_scaler(d, NULL, NULL), 0);
    cr_assert_eq(em_dataset_fit_scaler(d, d), EM_OK);
    cr_assert_eq(em_dataset_fit_scaler(d, d), EM_OK, "refit from the raw values");
    const float *mean, *std;
    cr_assert_eq(em_dataset_scaler(d, &mean, &std), 3);
    cr_assert_float_eq(mean[0], 5.5f, 1e-6, "not compounded: the mean of 1..10");
    float m[3], s[3];
    memcpy(m, mean, sizeof m);
    memcpy(s, std, sizeof s);
    em_tensor *x1, *y1, *x2, *y2;
    cr_assert_eq(em_dataset_get(d, 4, &x1, &y1), EM_OK);
    /* a fresh dataset given the saved statistics gives the same bits */
    em_dataset *e = emd_new(emd_fmt("CSV(path=\"%s\", standardize=true)", emd_path("scale.csv")));
    cr_assert_eq(em_dataset_set_scaler(e, m, s, 3), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_dataset_get(e, 4, &x2, &y2), EM_OK, "%s", em_last_error());
    double *v1 = emt_values(x1), *v2 = emt_values(x2);
    for (int j = 0; j < 3; j++)
        cr_assert_eq(v1[j], v2[j], "feature %d: %.9g vs %.9g", j, v1[j], v2[j]);
    free(v1);
    free(v2);
    em_release(x1);
    em_release(y1);
    em_release(x2);
    em_release(y2);
    cr_assert_eq(em_dataset_set_scaler(e, m, s, 2), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("em_dataset_set_scaler: 2 statistics for samples of 3 elements");
    em_dataset_free(e);
    em_dataset_free(d);
}

Test(datasets, a_separate_training_file_can_provide_the_statistics)
{
    const char *train = write_scaling_csv();
    const char *test = emd_write("test.csv", "a,b,c,label\n5.5,5,1,0\n");
    em_dataset *tr = emd_new(emd_fmt("CSV(path=\"%s\")", train));
    em_dataset *te = emd_new(emd_fmt("CSV(path=\"%s\", standardize=true)", test));
    cr_assert_eq(em_dataset_fit_scaler(te, tr), EM_OK, "%s", em_last_error());
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(te, 0, &x, &y), EM_OK, "%s", em_last_error());
    double *v = emt_values(x);
    cr_assert_float_eq(v[0], 0.0, 1e-7, "5.5 is the training mean of a");
    free(v);
    em_release(x);
    em_release(y);
    /* the training data itself is unchanged */
    cr_assert_eq(em_dataset_scaler(tr, NULL, NULL), 0);
    em_dataset_free(tr);
    em_dataset_free(te);
}

Test(datasets, user_datasets_cannot_be_standardised_by_the_core)
{
    em_dataset *d = em_dataset_from_ops(&custom_ops, custom_init(write_tutorial_csv(4)));
    cr_assert_eq(em_dataset_fit_scaler(d, d), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("is not an in-memory dataset");
    em_dataset_free(d);
}

/* examples/tutorial.c - the PyTorch basics tutorial (its Korean edition), section by section,
 * in C with Ember.
 *
 *   1. environment: version, backends, devices (torch.cuda.is_available() and friends)
 *   2. tensors: copy versus share, dtype override, shapes, devices, memory stats, in place
 *   3. autograd: leaves, requires_grad, grad_fn, retain_grad, no-grad, backward
 *   4. training: a CustomDataset over a CSV, a DataLoader, the 3-64-128-10 CustomClassifier,
 *      CrossEntropyLoss, SGD, and the train and test loops over epochs
 *
 * Usage: tutorial [DATA_CSV] [EPOCHS]  (defaults: examples/data/tutorial.csv next to the
 * program's source tree, 30 epochs). Every value the tutorial shows is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "tutorial: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #x,  \
                    em_last_error());                                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static void section(const char *title) { printf("\n== %s\n", title); }

/* ---- 1. environment ------------------------------------------------------------------------ */

static void environment(void)
{
    section("environment");
    printf("ember version: %s\n", em_version());
    printf("cuda available: %s, device count: %d\n", em_backend_available("cuda") ? "yes" : "no",
           em_device_count("cuda"));
    char buf[32];
    em_device d = em_default_device();
    printf("default device: %s (%s)\n", em_device_str(d, buf, sizeof buf), em_device_name(d));
}

/* ---- 2. tensors ------------------------------------------------------------------------------ */

static void tensors(void)
{
    section("tensors: copy versus share");
    int64_t my_arr[2][3] = {{1, 2, 3}, {4, 5, 6}};
    em_tensor *t1 = em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), NULL);            /* torch.tensor */
    em_tensor *t2 = em_tensor_from_blob(my_arr, EM_I64, EM_SHAPE(2, 3), NULL, NULL);      /* from_numpy */
    CHECK(t1 && t2);
    my_arr[0][0] = 999;
    printf("t1 = ");
    em_print(t1);   /* tensor([[1, 2, 3], [4, 5, 6]]) */
    printf("t2 = ");
    em_print(t2);   /* tensor([[999, 2, 3], [4, 5, 6]]) */

    section("tensors: dtype and shape");
    em_tensor *tf = em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), &(em_opts){.dtype = EM_F32});
    CHECK(tf);
    printf("dtype override: %s\n", em_dtype_name(em_dtype_of(tf)));
    em_tensor *r = em_rand(EM_SHAPE(2, 3), NULL), *o = em_ones(EM_SHAPE(2, 3), NULL);
    em_tensor *z = em_zeros(EM_SHAPE(2, 3), NULL);
    CHECK(r && o && z);
    printf("rand: ");
    em_print(r);
    printf("ones: ");
    em_print(o);
    printf("zeros: ");
    em_print(z);

    section("tensors: devices and memory");
    float v[3] = {0, 1, 2};
    em_tensor *ft = em_tensor_from_data(v, EM_F32, EM_SHAPE(3), NULL);
    char buf[32];
    printf("%s is on %s\n", "FloatTensor([0., 1., 2.])", em_device_str(em_device_of(ft), buf, sizeof buf));
    /* A second device when one is loaded (cuda, opencl): to it and back. */
    const char *names[] = {"cuda", "opencl"};
    for (int i = 0; i < 2; i++) {
        if (!em_backend_available(names[i]))
            continue;
        em_device dev = em_device_parse(names[i]);
        size_t before = em_memory_allocated(dev);
        em_tensor *g = em_to(ft, dev), *back = g ? em_cpu(g) : NULL;
        CHECK(g && back);
        printf("on %s: ", names[i]);
        em_print(g);
        printf("memory allocated on %s: %zu bytes more; reserved %zu\n", names[i],
               em_memory_allocated(dev) - before, em_memory_reserved(dev));
        em_release(g);
        em_empty_cache(dev);
        em_release(back);
    }
    em_device cpu = em_device_parse("cpu");
    printf("cpu memory: %zu bytes allocated, %zu reserved\n", em_memory_allocated(cpu),
           em_memory_reserved(cpu));

    section("tensors: in place");
    uint64_t ver = em_tensor_version(r);
    em_release(em_add_scalar_(r, 5));   /* t1.add_(5) */
    printf("after add_(5) (version %llu -> %llu): ", (unsigned long long)ver,
           (unsigned long long)em_tensor_version(r));
    em_print(r);

    em_release(t1);
    em_release(t2);
    em_release(tf);
    em_release(r);
    em_release(o);
    em_release(z);
    em_release(ft);
}

/* ---- 3. autograd ------------------------------------------------------------------------------ */

static void print_attrs(const char *name, em_tensor *t)
{
    em_tensor *g = em_grad(t);
    char *gs = g ? em_tensor_str(g) : NULL;
    printf("%-8s requires_grad=%s grad_fn=%s is_leaf=%s grad=%s\n", name,
           em_requires_grad(t) ? "True" : "False",
           em_grad_fn_name(t) ? em_grad_fn_name(t) : "None", em_is_leaf(t) ? "True" : "False",
           gs ? gs : "None");
    free(gs);
}

static void autograd(void)
{
    section("autograd: leaves and grad_fn");
    float ten = 10, twenty = 20;
    em_opts rg = {.requires_grad = true};
    em_tensor *user = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1), &rg);
    em_tensor *calc = em_mul_scalar(user, 2);
    CHECK(user && calc);
    print_attrs("user", user);
    print_attrs("calc", calc);
    CHECK(em_backward(calc, NULL, false) == EM_OK);
    print_attrs("user", user);   /* grad tensor([2.]) */
    print_attrs("calc", calc);   /* grad None: not a leaf */

    section("autograd: requires_grad is contagious");
    em_tensor *m1 = em_randn(EM_SHAPE(3, 3), NULL), *m2 = em_randn(EM_SHAPE(3, 3), NULL);
    CHECK(em_requires_grad_(m1, true) == EM_OK);
    em_tensor *m3 = em_matmul(m1, m2);
    printf("(t1 @ t2).requires_grad = %s\n", em_requires_grad(m3) ? "True" : "False");
    em_tensor *m4 = NULL;
    EM_NO_GRAD { m4 = em_matmul(m1, m2); }
    printf("under no_grad: requires_grad = %s, grad_fn = %s\n",
           em_requires_grad(m4) ? "True" : "False", em_grad_fn_name(m4) ? em_grad_fn_name(m4) : "None");

    section("autograd: backward");
    em_tensor *a = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1), &rg);
    em_tensor *b = em_tensor_from_data(&twenty, EM_F32, EM_SHAPE(1), &rg);
    em_tensor *F = em_mul(a, b);
    CHECK(em_retain_grad(F) == EM_OK);
    em_tensor *G = em_mul_scalar(F, 2);
    printf("F.grad_fn = %s\n", em_grad_fn_name(F));
    CHECK(em_backward(G, NULL, false) == EM_OK);
    printf("a.grad = ");
    em_print(em_grad(a));   /* tensor([40.]) */
    printf("b.grad = ");
    em_print(em_grad(b));   /* tensor([20.]) */
    printf("F.grad = ");
    em_print(em_grad(F));   /* tensor([2.]) with retain_grad */
    em_tensor *vec = em_mul_scalar(m1, 2);
    if (em_backward(vec, NULL, false) < 0)
        printf("backward on a 3x3 tensor: %s\n", em_last_error());
    em_tensor *ones = em_ones(EM_SHAPE(3, 3), NULL);
    CHECK(em_backward(vec, ones, false) == EM_OK);   /* G.backward(torch.ones(G.shape)) */
    float g[9];
    CHECK(em_copy_to_host(em_grad(m1), g, sizeof g) == EM_OK);
    printf("with a gradient of ones: m1.grad[0][0] = %g\n", g[0]);   /* d(2 m1)/d m1 = 2 */

    /* The GPU case, on whichever second device is loaded. */
    const char *names[] = {"cuda", "opencl"};
    for (int i = 0; i < 2; i++) {
        if (!em_backend_available(names[i]))
            continue;
        em_device dev = em_device_parse(names[i]);
        em_tensor *ca = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1), &rg);
        em_tensor *cb = em_tensor_from_data(&twenty, EM_F32, EM_SHAPE(1), &rg);
        em_tensor *ad = em_to(ca, dev), *bd = em_to(cb, dev);
        em_tensor *Fd = em_mul(ad, bd), *Gd = em_mul_scalar(Fd, 2);
        CHECK(Gd && em_backward(Gd, NULL, false) == EM_OK);
        printf("%s case: a.grad = ", names[i]);
        em_print(em_grad(ca));
        printf("%s case: a_%s.grad = %s (not a leaf)\n", names[i], names[i],
               em_grad(ad) ? "set" : "None");
        em_release(ca);
        em_release(cb);
        em_release(ad);
        em_release(bd);
        em_release(Fd);
        em_release(Gd);
    }

    em_release(user);
    em_release(calc);
    em_release(m1);
    em_release(m2);
    em_release(m3);
    em_release(m4);
    em_release(a);
    em_release(b);
    em_release(F);
    em_release(G);
    em_release(vec);
    em_release(ones);
}

/* ---- 4. training ---------------------------------------------------------------------------- */

/* The tutorial's CustomDataset: the CSV read once into memory, __len__ and __getitem__. */
typedef struct custom_dataset {
    int64_t n;
    float (*x)[3];
    int64_t *y;
} custom_dataset;

static int64_t ds_len(void *ctx) { return ((custom_dataset *)ctx)->n; }

static int ds_get(void *ctx, int64_t i, em_tensor **x, em_tensor **y)
{
    custom_dataset *d = ctx;
    em_opts on_cpu = {.device = em_device_parse("cpu")};
    *x = em_tensor_from_data(d->x[i], EM_F32, EM_SHAPE(3), &on_cpu);
    *y = em_tensor_from_data(&d->y[i], EM_I64, EM_SCALAR, &on_cpu);
    return *x && *y ? EM_OK : em_last_status();
}

static void ds_destroy(void *ctx)
{
    custom_dataset *d = ctx;
    free(d->x);
    free(d->y);
    free(d);
}

static em_dataset *custom_dataset_new(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tutorial: cannot open %s\n", path);
        exit(1);
    }
    custom_dataset *d = calloc(1, sizeof *d);
    char line[256];
    int64_t cap = 0;
    if (!fgets(line, sizeof line, f) || strncmp(line, "feature1,feature2,feature3,label", 32)) {
        fprintf(stderr, "tutorial: %s: expected the header feature1,feature2,feature3,label\n", path);
        exit(1);
    }
    while (fgets(line, sizeof line, f)) {
        if (d->n == cap) {
            cap = cap ? cap * 2 : 256;
            d->x = realloc(d->x, (size_t)cap * sizeof *d->x);
            d->y = realloc(d->y, (size_t)cap * sizeof *d->y);
            CHECK(d->x && d->y);
        }
        long long label;
        if (sscanf(line, "%f,%f,%f,%lld", &d->x[d->n][0], &d->x[d->n][1], &d->x[d->n][2],
                   &label) != 4) {
            fprintf(stderr, "tutorial: %s:%lld: malformed row\n", path, (long long)d->n + 2);
            exit(1);
        }
        d->y[d->n++] = label;
    }
    fclose(f);
    em_dataset_ops ops = {sizeof ops, ds_len, ds_get, ds_destroy};
    em_dataset *ds = em_dataset_from_ops(&ops, d);
    CHECK(ds);
    return ds;
}

static void training(const char *csv, int epochs)
{
    section("training: dataset and dataloader");
    em_manual_seed(0);
    em_dataset *all = custom_dataset_new(csv), *parts[2];
    int64_t n = em_dataset_len(all);
    CHECK(em_random_split(all, 2, (const double[]){(double)(n * 8 / 10), (double)(n - n * 8 / 10)},
                          0, parts) == EM_OK);
    em_dataloader *train_dl = em_dataloader_new(parts[0], 64, true, 0);
    em_dataloader *test_dl = em_dataloader_new(parts[1], 64, false, 0);
    CHECK(train_dl && test_dl);
    em_tensor *features, *label;
    CHECK(em_dataloader_next(train_dl, &features, &label));   /* next(iter(train_dataloader)) */
    char *s = em_tensor_str(label);
    printf("first batch: features %lldx%lld, labels %s\n", (long long)em_shape(features)[0],
           (long long)em_shape(features)[1], s);
    free(s);
    em_release(features);
    em_release(label);
    em_dataloader_reset(train_dl);

    section("training: the CustomClassifier");
    em_module *model = em_module_new("Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), "
                                     "Linear(128, 10))");
    CHECK(model);
    em_module_print(model);
    char *table = em_module_summary(model, EM_SHAPE(64, 3));
    CHECK(table);
    fputs(table, stdout);
    free(table);
    for (int i = 0; i < em_module_param_count(model); i++) {
        em_tensor *p = em_module_param(model, i);
        char shape[64];
        int k = snprintf(shape, sizeof shape, "[");
        for (int d = 0; d < em_ndim(p); d++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, d ? ", %lld" : "%lld",
                          (long long)em_shape(p)[d]);
        snprintf(shape + k, sizeof shape - (size_t)k, "]");
        printf("%-10s %-12s requires_grad=%s\n", em_module_param_name(model, i), shape,
               em_requires_grad(p) ? "True" : "False");
    }

    section("training: loss and optimizer");
    em_module *loss_fn = em_module_new("CrossEntropyLoss()");
    CHECK(loss_fn);
    em_tensor *dummy_out = em_rand(EM_SHAPE(64, 10), NULL);
    em_tensor *dummy_lab = em_randint(0, 10, EM_SHAPE(64), NULL);
    em_tensor *dl = em_loss(loss_fn, dummy_out, dummy_lab);
    CHECK(dl);
    printf("loss on random outputs: %.4f (about ln 10 = 2.3026)\n", em_item(dl));
    em_release(dummy_out);
    em_release(dummy_lab);
    em_release(dl);
    em_optimizer *opt = em_optimizer_new("SGD(lr=0.05, momentum=0.9)", model);
    CHECK(opt);

    section("training: epochs");
    for (int epoch = 0; epoch < epochs; epoch++) {
        double running = 0;
        int64_t seen = 0;
        em_module_train(model, true);   /* model.train() */
        em_tensor *x, *y;
        while (em_dataloader_next(train_dl, &x, &y)) {
            em_scope_begin();
            em_zero_grad(opt);
            em_tensor *out = em_forward(model, x);
            em_tensor *loss = em_loss(loss_fn, out, y);
            CHECK(loss && em_backward(loss, NULL, false) == EM_OK && em_step(opt) == EM_OK);
            running += em_item(loss) * (double)em_shape(x)[0];
            seen += em_shape(x)[0];
            em_scope_end();
            em_release(x);
            em_release(y);
        }
        double test_loss = 0;
        int64_t correct = 0, total = 0;
        em_module_train(model, false);  /* model.eval() */
        EM_NO_GRAD {
            while (em_dataloader_next(test_dl, &x, &y)) {
                em_scope_begin();
                em_tensor *out = em_forward(model, x);
                em_tensor *loss = em_loss(loss_fn, out, y);
                em_tensor *hit = em_sum_all(em_eq(em_argmax(out, 1, false), y));
                test_loss += em_item(loss) * (double)em_shape(x)[0];
                correct += (int64_t)em_item(hit);
                total += em_shape(x)[0];
                em_scope_end();
                em_release(x);
                em_release(y);
            }
        }
        if (epoch % 5 == 0 || epoch == epochs - 1)
            printf("epoch %3d: train loss %.4f, test loss %.4f, test accuracy %.1f%%\n", epoch,
                   running / (double)seen, test_loss / (double)total,
                   100.0 * (double)correct / (double)total);
    }
    em_optimizer_free(opt);
    em_module_free(loss_fn);
    em_module_free(model);
    em_dataloader_free(train_dl);
    em_dataloader_free(test_dl);
    em_dataset_free(parts[0]);
    em_dataset_free(parts[1]);
    em_dataset_free(all);
}

int main(int argc, char **argv)
{
    const char *csv = argc > 1 ? argv[1] : EMBER_TUTORIAL_CSV;
    int epochs = argc > 2 ? atoi(argv[2]) : 30;
    CHECK(em_init(NULL) == EM_OK);
    environment();
    tensors();
    autograd();
    training(csv, epochs > 0 ? epochs : 30);
    em_shutdown();
    return 0;
}

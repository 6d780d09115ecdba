/* examples/tensors.c - the tutorial's tensor section in C.
 *
 * Copy versus share (torch.tensor versus torch.from_numpy), dtype override, shapes of
 * rand/ones/zeros, devices, memory stats, and an in-place op with its version counter.
 */
#include <stdio.h>
#include <stdlib.h>

#include <ember/ember.h>

#define CHECK(x)                                                                         \
    do {                                                                                 \
        if (!(x)) {                                                                      \
            fprintf(stderr, "tensors: %s failed: %s\n", #x, em_last_error());             \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

int main(void)
{
    CHECK(em_init(NULL) == EM_OK);
    em_scope_begin();   /* every tensor below is released by em_scope_end() */

    /* my_arr = np.array([[1, 2, 3], [4, 5, 6]]) */
    int64_t my_arr[2][3] = {{1, 2, 3}, {4, 5, 6}};
    em_tensor *t1 = em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), NULL); /* copies */
    em_tensor *t2 = em_tensor_from_blob(my_arr, EM_I64, EM_SHAPE(2, 3), NULL, NULL); /* shares */
    CHECK(t1 && t2);
    my_arr[0][0] = 999;
    printf("t1 (copied):\n");
    em_print(t1);
    printf("t2 (shared):\n");
    em_print(t2);

    em_tensor *f = em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), &(em_opts){.dtype = EM_F32});
    CHECK(f);
    printf("dtype override: %s\n", em_dtype_name(em_dtype_of(f)));

    em_manual_seed(0);
    em_tensor *r = em_rand(EM_SHAPE(2, 3), NULL);
    em_tensor *o = em_ones(EM_SHAPE(2, 3), NULL);
    em_tensor *z = em_zeros(EM_SHAPE(2, 3), NULL);
    CHECK(r && o && z);
    printf("rand:\n");
    em_print(r);
    printf("ones:\n");
    em_print(o);
    printf("zeros:\n");
    em_print(z);

    char dev[32];
    printf("default device: %s; cuda available: %s\n",
           em_device_str(em_default_device(), dev, sizeof dev),
           em_backend_available("cuda") ? "yes" : "no");
    printf("memory allocated on %s: %zu bytes (reserved %zu)\n", dev,
           em_memory_allocated(em_default_device()), em_memory_reserved(em_default_device()));

    /* t1.add_(5): in place, bumps the version counter */
    uint64_t before = em_tensor_version(r);
    CHECK(em_add_scalar_(r, 5));
    printf("after add_(5), version %llu -> %llu:\n", (unsigned long long)before,
           (unsigned long long)em_tensor_version(r));
    em_print(r);

    em_scope_end();
    em_shutdown();
    return 0;
}

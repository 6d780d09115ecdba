/* tests/plugins/devcomm/devcomm.c - a communicator for tests that, as NCCL does, takes buffers
 * on one device only: "mock:1" (tests/plugins/mockdev), named through em_comm_ops.device. It
 * plays rank 0 of 2 in a single process: every collective checks that its buffers are on
 * mock:1 and contiguous-sized, then leaves them as they are (the other rank contributes
 * nothing), so that the core's staging (host and other-device tensors onto mock:1, and the
 * results back) can be tested on a machine without a GPU. */
#include <stdio.h>
#include <stdlib.h>

#include <ember/plugin.h>

static em_device want;

static int start(void *ctx, int *rank, int *size, int *local_rank)
{
    (void)ctx;
    want = em_device_parse("mock:1");
    if (want.index < 0)
        return em_set_error(EM_ERR_DEVICE, "devcomm: needs the mock backend (mock:1)");
    *rank = 0;
    *size = 2;
    *local_rank = 0;
    return EM_OK;
}

static int device(void *ctx, em_device *dev)
{
    (void)ctx;
    *dev = want;
    return EM_OK;
}

static int check(const char *what, const em_comm_buf *b, void **req)
{
    char got[32], exp[32];
    if (b->device.backend != want.backend || b->device.index != want.index)
        return em_set_error(EM_ERR_DEVICE, "devcomm: %s: a buffer on %s, not %s", what,
                            em_device_str(b->device, got, sizeof got),
                            em_device_str(want, exp, sizeof exp));
    *req = malloc(1);
    return *req ? EM_OK : em_set_error(EM_ERR_NOMEM, "devcomm: out of memory");
}

static int all_reduce(void *ctx, em_comm_buf *b, em_reduce_op op, void **req)
{
    (void)ctx;
    (void)op;
    return check("all_reduce", b, req);
}

static int broadcast(void *ctx, em_comm_buf *b, int root, void **req)
{
    (void)ctx;
    (void)root;
    return check("broadcast", b, req);
}

static int all_gather(void *ctx, const em_comm_buf *send, em_comm_buf *recv, void **req)
{
    (void)ctx;
    (void)send;
    (void)recv;
    (void)req;
    return em_set_error(EM_ERR_UNSUPPORTED, "devcomm: no all_gather");
}

static int reduce_scatter(void *ctx, const em_comm_buf *send, em_comm_buf *recv,
                          em_reduce_op op, void **req)
{
    (void)ctx;
    (void)send;
    (void)recv;
    (void)op;
    (void)req;
    return em_set_error(EM_ERR_UNSUPPORTED, "devcomm: no reduce_scatter");
}

static int barrier(void *ctx, void **req)
{
    (void)ctx;
    *req = NULL;
    return EM_OK;
}

static int wait_req(void *ctx, void *req, double timeout_s, const char *what)
{
    (void)ctx;
    (void)timeout_s;
    (void)what;
    free(req);
    return EM_OK;
}

static void abort_job(void *ctx, int code, const char *msg)
{
    (void)ctx;
    (void)msg;
    exit(code);
}

static const em_comm_ops ops = {
    .struct_size = sizeof(em_comm_ops),
    .name = "devcomm",
    .host_only = false,
    .start = start,
    .all_reduce = all_reduce,
    .broadcast = broadcast,
    .all_gather = all_gather,
    .reduce_scatter = reduce_scatter,
    .barrier = barrier,
    .wait = wait_req,
    .abort = abort_job,
    .device = device,
};

static int init(em_registry *reg) { return em_register_communicator(reg, &ops, NULL); }

EM_PLUGIN_DEFINE("devcomm", "0", "a one-device communicator for tests (rank 0 of 2)", init,
                 NULL)

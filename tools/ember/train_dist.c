/* tools/ember/train_dist.c - what `ember train` and `ember eval` do differently when
 * launched by mpirun.
 *
 * With a process group of size N (ember/dist.h): the model is wrapped in
 * DistributedDataParallel, the training loader takes this rank's shard of each epoch (padded
 * as DistributedSampler pads), the test loader an unpadded shard so that evaluation figures
 * are sums over the whole test set, and rank 0 alone prints, reads and writes files: what
 * the others need from a file (a checkpoint to resume or test) rank 0 reads and sends them, so
 * the ranks need not share a file system. With one process every function here is a no-op
 * (or reads the file itself), so the train loop has no special case.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

bool train_dist_is_root(void) { return em_dist_rank() == 0; }

const char *train_dist_banner(void)
{
    static char buf[64];
    if (em_dist_size() == 1)
        return "";
    snprintf(buf, sizeof buf, ", %d ranks (%s), batch_size per rank", em_dist_size(),
             em_dist_backend());
    return buf;
}

int train_dist_setup(em_module *model, em_dataloader *train_dl, const em_ddp_opts *opts,
                     em_ddp **ddp)
{
    *ddp = NULL;
    if (em_dist_size() == 1)
        return 0;
    if (em_dataloader_set_shard(train_dl, em_dist_rank(), em_dist_size(), EM_SHARD_PAD) < 0)
        return cli_fail("train loader shard");
    if (!(*ddp = em_ddp_new(model, opts)))
        return cli_fail("DistributedDataParallel");
    return 0;
}

int train_dist_shard_eval(em_dataloader *dl)
{
    if (em_dist_size() > 1 &&
        em_dataloader_set_shard(dl, em_dist_rank(), em_dist_size(), EM_SHARD_UNEVEN) < 0)
        return cli_fail("test loader shard");
    return 0;
}

int train_dist_sum(double *v, int n)
{
    if (em_dist_size() == 1 || n == 0)
        return 0;
    int64_t shape = n;
    em_tensor *t = em_tensor_from_blob(v, EM_F64, 1, &shape, NULL, NULL);
    int rc = t ? em_dist_all_reduce(t, EM_REDUCE_SUM) : em_last_status();
    em_release(t);
    return rc < 0 ? cli_fail("all_reduce of the epoch's figures") : 0;
}

int train_dist_sum_i64(int64_t *v, int64_t n)
{
    if (em_dist_size() == 1 || n == 0)
        return 0;
    em_tensor *t = em_tensor_from_blob(v, EM_I64, 1, &n, NULL, NULL);
    int rc = t ? em_dist_all_reduce(t, EM_REDUCE_SUM) : em_last_status();
    em_release(t);
    return rc < 0 ? cli_fail("all_reduce of the confusion matrix") : 0;
}

/* A whole file into a new buffer (*out, *size); 0 or errno. */
static int read_whole(const char *path, unsigned char **out, int64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return errno ? errno : EIO;
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    int err = b ? 0 : ENOMEM;
    while (!err) {
        if (n == cap) {
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                err = ENOMEM;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                err = errno ? errno : EIO;
            break;
        }
    }
    fclose(f);
    if (err) {
        free(b);
        return err;
    }
    *out = b;
    *size = (int64_t)n;
    return 0;
}

/* Broadcasts t from rank 0; false (error printed) if it fails. */
static bool bcast(em_tensor *t, const char *what)
{
    int rc = t ? em_dist_broadcast(t, 0) : em_last_status();
    em_release(t);
    if (rc < 0)
        cli_fail(what);
    return rc >= 0;
}

int train_dist_read(const char *path, unsigned char **bytes, size_t *size)
{
    *bytes = NULL;
    *size = 0;
    int64_t head[2] = {0, 0}, two = 2;   /* rank 0's size and errno */
    unsigned char *buf = NULL;
    if (train_dist_is_root())
        head[1] = read_whole(path, &buf, &head[0]);
    if (em_dist_size() > 1) {
        if (!bcast(em_tensor_from_blob(head, EM_I64, 1, &two, NULL, NULL), "sending a file's size"))
            head[1] = EIO;
        /* every rank says whether it has room, so that none is left alone in the broadcast */
        int64_t fail = head[1] ? 1 : 0, one = 1;
        if (!head[1] && !train_dist_is_root() && !(buf = malloc(head[0] ? (size_t)head[0] : 1)))
            fail = 1;
        em_tensor *t = em_tensor_from_blob(&fail, EM_I64, 1, &one, NULL, NULL);
        if (!head[1] && (!t || em_dist_all_reduce(t, EM_REDUCE_MAX) < 0)) {
            fail = 1;
            cli_fail("agreeing on a file's transfer");
        }
        em_release(t);
        if (!head[1] && fail)
            head[1] = ENOMEM;
        if (!head[1] && head[0] > 0 &&
            !bcast(em_tensor_from_blob(buf, EM_U8, 1, &head[0], NULL, NULL), "sending a file"))
            head[1] = EIO;
    }
    if (head[1]) {
        free(buf);
        return (int)head[1];
    }
    *bytes = buf;
    *size = (size_t)head[0];
    return 0;
}

int train_dist_end(const char *cmd, int rc)
{
    if (rc != 0 && rc != 130 && em_dist_size() > 1) {   /* 130: an agreed interrupt */
        char msg[96];
        snprintf(msg, sizeof msg, "ember %s failed (status %d); ending the job", cmd, rc);
        em_dist_abort(rc, msg);
    }
    em_shutdown();
    return rc;
}

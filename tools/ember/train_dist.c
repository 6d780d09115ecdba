/* tools/ember/train_dist.c - what `ember train` and `ember eval` do differently when
 * launched by mpirun.
 *
 * With a process group of size N (ember/dist.h): the model is wrapped in
 * DistributedDataParallel, the training loader takes this rank's shard of each epoch (padded
 * as DistributedSampler pads), the test loader an unpadded shard so that evaluation figures
 * are sums over the whole test set, and rank 0 alone prints and writes files. With one
 * process every function here is a no-op, so the train loop has no special case.
 */
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

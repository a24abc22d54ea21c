"Run under torchrun by test_contextrast.py: Contextrast's anchors over 2 gloo ranks are those of the whole batch."
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from ctxseg.methods.contextrast import representative_anchors, sync_anchor_sums

out = Path(sys.argv[1])
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()
g = torch.Generator().manual_seed(0)
z_all = torch.randn(4, 5, 6, 6, generator=g, dtype=torch.float64)            # the same global batch on both ranks
y_all = torch.randint(0, 4, (4, 6, 6), generator=g); y_all[2:] = torch.where(y_all[2:] == 3, 1, y_all[2:])  # class 3 on rank 0 only
z = z_all[2 * rank:2 * rank + 2].clone().requires_grad_()
a, c = representative_anchors(z, y_all[2 * rank:2 * rank + 2], 5)
s, n = sync_anchor_sums(a * c.clamp(min=1)[:, None], c)
A = s / n.clamp(min=1)[:, None]
A.sum().backward()
ref, refc = representative_anchors(z_all, y_all, 5)
res = {'equal': bool(torch.allclose(A.detach(), ref, atol=1e-12)), 'counts': bool(torch.equal(n, refc)),
       'grad': bool(z.grad is not None and z.grad.abs().sum() > 0)}
allres = [None] * world; dist.all_gather_object(allres, res)
if rank == 0: (out / 'contextrast_ddp.json').write_text(json.dumps({'world': world, 'ranks': allres}))
dist.destroy_process_group()

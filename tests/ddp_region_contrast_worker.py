"Run under torchrun by test_region_contrast.py: RegionContrast queues on 2 gloo ranks."
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from ctxseg import configs as C
from ctxseg.engine import train, _unwrap
from ctxseg.methods.region_contrast import RegionContrast, region_centres

out = Path(sys.argv[1])
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()

# 1. the method alone: the same module on both ranks, different images per rank, one training step
torch.manual_seed(0)
m = RegionContrast(8, num_classes=4, queue_len=16, loss_weight=1.0).train()
g = torch.Generator().manual_seed(100 + rank)
feat = torch.randn(2, 8, 6, 6, generator=g, requires_grad=True)
labels = torch.randint(0, 4 if rank == 0 else 3, (2, 6, 6), generator=g)     # rank 1 has no class 3
m({'rep': feat}, torch.randn(2, 4, 6, 6, generator=g), labels)['region_contrast'].backward()
local, _ = region_centres(feat.detach(), labels, per_image=True)
bufs = torch.cat([b.detach().float().flatten() for n, b in m.named_buffers()])
gb = [torch.zeros_like(bufs) for _ in range(world)]; dist.all_gather(gb, bufs)
counts = [None] * world; dist.all_gather_object(counts, len(local))
locs = [None] * world; dist.all_gather_object(locs, local.tolist())
entries = m.queues.permute(0, 2, 1)[m.valid()]
found = [all(bool(((entries - torch.tensor(r)).abs().max(1).values < 1e-5).any()) for r in l) for l in locs]

# 2. the engine: two iterations of the smoke preset with the method under DDP
cfg = C.get('smoke_regcon', ['train.iters=2', 'data.num_val=4'])
metrics, model = train(cfg, out / 'run', progress=False, return_model=True)
net = _unwrap(model)
flat = torch.cat([x.detach().flatten() for x in net.parameters()])
tb = torch.cat([x.detach().float().flatten() for x in net.method.buffers()])
gp = [torch.zeros_like(flat) for _ in range(world)]; dist.all_gather(gp, flat)
gt = [torch.zeros_like(tb) for _ in range(world)]; dist.all_gather(gt, tb)
if rank == 0:
    (out / 'regcon_ddp.json').write_text(json.dumps({
        'world': world, 'queues_equal': all(torch.equal(gb[0], x) for x in gb[1:]), 'local_counts': counts,
        'written': int(m.filled.sum()), 'found_from_rank': found,
        'train_buffers_equal': all(torch.equal(gt[0], x) for x in gt[1:]) and int(net.method.filled.sum()) > 0,
        'train_params_equal': all(torch.equal(gp[0], x) for x in gp[1:])}))
dist.destroy_process_group()

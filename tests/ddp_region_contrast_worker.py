"Run under torchrun by test_region_contrast.py: RegionContrast queues on 2 gloo ranks."
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from ctxseg import presets as P
from ctxseg.engine import train, _unwrap
from ctxseg.methods.region_contrast import RegionContrast, region_centres, region_weights

out = Path(sys.argv[1])
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()

# 1. the method alone: the same module on both ranks, different images per rank, one training step
torch.manual_seed(0)
m = RegionContrast(8, num_classes=4, queue_len=16, loss_weight=1.0).train()
g = torch.Generator().manual_seed(100 + rank)
feat = torch.randn(2, 8, 6, 6, generator=g, requires_grad=True)
labels = torch.randint(0, 4 if rank == 0 else 3, (2, 6, 6), generator=g)     # rank 1 has no class 3
logits = torch.randn(2, 4, 6, 6, generator=g)
m({'rep': feat}, logits, labels)['region_contrast'].backward()
local, _ = region_centres(feat.detach(), labels, per_image=True, weights=region_weights(logits, labels))   # the paper's dynamic centres
bufs = torch.cat([b.detach().float().flatten() for n, b in m.named_buffers()])
gb = [torch.zeros_like(bufs) for _ in range(world)]; dist.all_gather(gb, bufs)
counts = [None] * world; dist.all_gather_object(counts, len(local))
locs = [None] * world; dist.all_gather_object(locs, local.tolist())
entries = m.queues.permute(0, 2, 1)[m.valid()]
found = [all(bool(((entries - torch.tensor(r)).abs().max(1).values < 1e-5).any()) for r in l) for l in locs]

# 2. the engine: two iterations of the smoke preset with the method under DDP
cfg = P.get('smoke_regcon', ['train.iters=2', 'data.num_val=4'])
metrics, model = train(cfg, out / 'run', progress=False, return_model=True)
net = _unwrap(model)
flat = torch.cat([x.detach().flatten() for x in net.parameters()])
tb = torch.cat([x.detach().float().flatten() for x in net.method.buffers()])
gp = [torch.zeros_like(flat) for _ in range(world)]; dist.all_gather(gp, flat)
gt = [torch.zeros_like(tb) for _ in range(world)]; dist.all_gather(gt, tb)
# 3. the released path: every loss term divided by the world size (the Segmentor), rank 0's centres only (the queues)
from ctxseg.models.segmentor import build_model
torch.manual_seed(0)
seg = build_model(P.get('smoke_regcon_authors'), 8).train()
x, y = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(5)), torch.randint(0, 8, (2, 32, 32), generator=torch.Generator().manual_seed(6))
state = {k: v.clone() for k, v in seg.state_dict().items()}
divided = {k: float(v) for k, v in seg(x, y).losses.items()}
seg.load_state_dict(state); seg.divide_by_world = False
plain = {k: float(v) for k, v in seg(x, y).losses.items()}
ratios = {k: plain[k] / divided[k] for k in plain if divided[k] != 0}
m1 = RegionContrast(8, num_classes=4, queue_len=16, loss_weight=1.0, enqueue_ranks='first').train()
m1({'rep': feat.detach()}, logits, labels)                                  # the same logits: the same dynamic centres
b1 = torch.cat([m1.queues.flatten(), m1.filled.float()])
g1 = [torch.zeros_like(b1) for _ in range(world)]; dist.all_gather(g1, b1)
entries1 = m1.queues.permute(0, 2, 1)[m1.valid()]
found1 = [all(bool(((entries1 - torch.tensor(r)).abs().max(1).values < 1e-5).any()) for r in l) for l in locs]
if rank == 0:
    (out / 'regcon_ddp.json').write_text(json.dumps({
        'loss_ratios': ratios, 'divide_flag': bool(seg.method.divide_by_world_size),
        'first_equal': all(torch.equal(g1[0], t) for t in g1[1:]), 'first_found': found1, 'first_written': int(m1.filled.sum()),
        'world': world, 'queues_equal': all(torch.equal(gb[0], x) for x in gb[1:]), 'local_counts': counts,
        'written': int(m.filled.sum()), 'found_from_rank': found,
        'train_buffers_equal': all(torch.equal(gt[0], x) for x in gt[1:]) and int(net.method.filled.sum()) > 0,
        'train_params_equal': all(torch.equal(gp[0], x) for x in gp[1:])}))
dist.destroy_process_group()

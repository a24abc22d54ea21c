"Run under torchrun by test_pixel_contrast.py: pixel contrast queues on 2 gloo ranks."
import copy, json, sys
from pathlib import Path
import torch
import torch.distributed as dist
import torch.nn.functional as F
from ctxseg import presets as P
from ctxseg.engine import train, dist_info, _unwrap
from ctxseg.methods.pixel_contrast import PixelContrast

out = Path(sys.argv[1])
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()

# 1. the method alone: the same module on both ranks, different images per rank, one training step
torch.manual_seed(0)
m = PixelContrast(8, num_classes=4, memory=True, pixel_memory_size=64, segment_memory_size=32, pixel_update_freq=2,
                  max_views=1, proj_dim=8, warmup_iters=0).train()
g = torch.Generator().manual_seed(100 + rank)
feat = torch.randn(2, 8, 6, 6, generator=g)
labels = torch.randint(0, 4 if rank == 0 else 3, (2, 6, 6), generator=g)    # rank 1 has no class 3
losses = m({'layer4': feat}, torch.randn(2, 4, 6, 6, generator=g), labels)
losses['contrast'].backward()
with torch.no_grad():                                  # this rank's own segment entries (train-mode BN: batch statistics)
    e = copy.deepcopy(m.proj).train()(feat)
    local = []
    for b in range(2):
        for c in range(4):
            sel = labels[b] == c
            if sel.any(): local.append(F.normalize(e[b][:, sel].mean(1), dim=0))
    local = torch.stack(local)
bufs = torch.cat([b.detach().float().flatten() for n, b in m.named_buffers() if 'queue' in n or 'counter' in n])
gb = [torch.zeros_like(bufs) for _ in range(world)]; dist.all_gather(gb, bufs)
counts = [None] * world; dist.all_gather_object(counts, len(local))
locs = [None] * world; dist.all_gather_object(locs, local.tolist())
q = m.segment_queue
rows = q.queue[q.valid()]
found = [all(bool(((rows - torch.tensor(r)).abs().max(1).values < 1e-5).any()) for r in l) for l in locs]

# 2. the engine: two iterations of the smoke preset with the method under DDP
p = {'feature': 'layer4', 'max_views': 2, 'memory': True, 'pixel_memory_size': 16, 'segment_memory_size': 8,
     'warmup_iters': 0, 'proj_dim': 16}
cfg = P.get('smoke', ['train.iters=2', 'data.num_val=4', 'method.name=pixel_contrast', f'method.params={json.dumps(p)}'])
metrics, model = train(cfg, out / 'run', progress=False, return_model=True)
net = _unwrap(model)
flat = torch.cat([x.detach().flatten() for x in net.parameters()])
tb = torch.cat([x.detach().float().flatten() for x in net.method.buffers()])
gp = [torch.zeros_like(flat) for _ in range(world)]; dist.all_gather(gp, flat)
gt = [torch.zeros_like(tb) for _ in range(world)]; dist.all_gather(gt, tb)
if rank == 0:
    (out / 'pixcon_ddp.json').write_text(json.dumps({
        'world': world, 'queues_equal': all(torch.equal(gb[0], x) for x in gb[1:]), 'local_counts': counts,
        'filled': int(q.filled.sum()), 'found_from_rank': found,
        'train_buffers_equal': all(torch.equal(gt[0], x) for x in gt[1:]) and int(net.method.pixel_queue.filled.sum()) > 0,
        'train_params_equal': all(torch.equal(gp[0], x) for x in gp[1:])}))
dist.destroy_process_group()

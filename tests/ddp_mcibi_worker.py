"Run under torchrun by test_mcibi.py: the MCIBI memory on 2 gloo ranks."
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
import torch.nn.functional as F
from ctxseg import presets as P
from ctxseg.engine import train, _unwrap
from ctxseg.losses import SegLoss
from ctxseg.methods.mcibi import build_head, update_memory

out = Path(sys.argv[1])
dist.init_process_group('gloo')
rank, world = dist.get_rank(), dist.get_world_size()

# 1. the head alone: the same memory on both ranks, different images per rank, one update
torch.manual_seed(0)
h = build_head(16, 4, channels=8, transform_channels=4, dilations=(1, 2)).train()
h.memory.normal_()
g = torch.Generator().manual_seed(100 + rank)
x = torch.randn(2, 16, 4, 4, generator=g)
labels = torch.randint(0, 4 if rank == 0 else 3, (2, 16, 16), generator=g)     # rank 1 has no class 3
before = h.memory.clone()
o = h([x])
local = update_memory(before, F.interpolate(o['memory_input'].detach(), size=(16, 16), mode='bilinear', align_corners=False), labels, 0.5)
h.base_momentum = 0.5                                                           # fixed momentum (momentum_base_lr=None)
h.training_losses(o, labels, SegLoss('ce'))
locs = [torch.zeros_like(local) for _ in range(world)]; dist.all_gather(locs, local)
mems = [torch.zeros_like(h.memory) for _ in range(world)]; dist.all_gather(mems, h.memory)

# 2. the engine: two iterations of the smoke preset with the MCIBI head under DDP
cfg = P.get('smoke', ['train.iters=2', 'data.num_val=4', 'model.head=mcibi',
                      'model.head_kwargs={"dilations": [1, 2], "transform_channels": 8, "momentum_base_lr": 0.009}'])
metrics, model = train(cfg, out / 'run', progress=False, return_model=True)
net = _unwrap(model)
tm = [torch.zeros_like(net.head.memory) for _ in range(world)]; dist.all_gather(tm, net.head.memory.contiguous())
if rank == 0:
    mean = sum(locs) / world
    (out / 'mcibi_ddp.json').write_text(json.dumps({
        'world': world, 'memories_equal': all(torch.equal(mems[0], m) for m in mems[1:]),
        'is_mean_of_local_updates': float((mems[0] - mean).abs().max()),
        'locals_differ': float((locs[0] - locs[1]).abs().max()),
        'train_memories_equal': all(torch.equal(tm[0], m) for m in tm[1:]) and bool(tm[0].abs().sum() > 0)}))
dist.destroy_process_group()

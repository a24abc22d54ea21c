"Run under torchrun by test_distributed.py: train the smoke preset on 2 gloo ranks and check the ranks agree."
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from ctxseg import presets as P
from ctxseg.engine import train, dist_info, _unwrap

out = Path(sys.argv[1])
cfg = P.get('smoke', ['train.iters=4', 'data.num_val=6'])
metrics, model = train(cfg, out / 'run', progress=False, return_model=True)
rank, world = dist_info()
flat = torch.cat([p.detach().flatten() for p in _unwrap(model).parameters()])
bufs = torch.cat([b.detach().float().flatten() for b in _unwrap(model).buffers()])
gathered = [torch.zeros_like(flat) for _ in range(world)]; dist.all_gather(gathered, flat)
gb = [torch.zeros_like(bufs) for _ in range(world)]; dist.all_gather(gb, bufs)
if rank == 0:
    (out / 'ddp.json').write_text(json.dumps({
        'world': world, 'params_equal': all(torch.equal(gathered[0], g) for g in gathered[1:]),
        'buffers_equal': all(torch.equal(gb[0], g) for g in gb[1:]), 'metrics': metrics}))
dist.destroy_process_group()

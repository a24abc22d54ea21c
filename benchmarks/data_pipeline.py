"""Data-pipeline throughput: decoded + augmented samples/s for a Cityscapes-sized image (1024×2048).

Generates one street-like RGB image and its label map into a temporary folder (PNG image + PNG label, and a
JPEG of the same image), then times, for each decode backend (torchvision.io, PIL):

* decode only, transform only, decode + transform — single process, one thread (what one loader worker does);
* a `DataLoader` over the files with 1 and 2 workers (samples/s in total and per worker).

The transform is the Cityscapes training pipeline of `ctxseg.transforms.build_transforms`: random resize of the
(2048, 1024) base scale by r ~ U(0.5, 2), 512×1024 crop with cat_max_ratio 0.75, flip, photometric distortion,
ImageNet normalisation. Prints a table and writes JSON (machine, command, versions) to --out.

    flock /tmp/ctxseg-cpu.lock .venv/bin/python benchmarks/data_pipeline.py
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image

from ctxseg.configs import DataConfig
from ctxseg.transforms import build_transforms, read_image, read_label


def street_scene(H: int = 1024, W: int = 2048, seed: int = 0):
    "A synthetic 19-class street-like image with texture and noise (PNG size comparable to a Cityscapes frame)."
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    lab = np.full((H, W), 10, np.uint8)                                     # sky
    lab[yy > 0.35 * H] = 2                                                   # building
    lab[yy > 0.55 * H] = 0                                                   # road
    lab[(yy > 0.55 * H) & (xx < 0.12 * W)] = 1                               # sidewalk
    for k in range(40):                                                      # cars, people, poles, signs
        c = rng.choice([13, 11, 5, 7, 8, 18])
        y0, x0 = int(rng.uniform(0.35, 0.9) * H), int(rng.uniform(0, 1) * W)
        h, w = int(rng.uniform(0.02, 0.2) * H), int(rng.uniform(0.005, 0.1) * W)
        lab[max(y0 - h, 0):y0, x0:x0 + w] = c
    lab[rng.random((H, W)) < 0.002] = 255                                    # a few ignore pixels
    pal = rng.integers(0, 256, (256, 3)).astype(np.float32)
    img = pal[lab]
    img += 25 * np.sin(xx / 7.0)[..., None] * np.cos(yy / 11.0)[..., None]   # texture
    img += rng.normal(0, 6, img.shape)                                       # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8), lab


def read_pil(path, label=False):
    im = Image.open(path)
    a = np.asarray(im)
    return torch.from_numpy(a.copy()) if label else torch.from_numpy(a.copy()).permute(2, 0, 1).contiguous()


def read_tv(path, label=False):
    return read_label(path) if label else read_image(path)


BACKENDS = {'torchvision': read_tv, 'pil': read_pil}


def rate(fn, n: int, warmup: int = 2) -> float:
    "Calls per second of fn() over n calls after warm-up."
    for _ in range(warmup): fn()
    t = time.perf_counter()
    for _ in range(n): fn()
    return n / (time.perf_counter() - t)


class FileDataset(torch.utils.data.Dataset):
    def __init__(self, img_path, lab_path, n, backend, tf):
        self.img_path, self.lab_path, self.n, self.read, self.tf = img_path, lab_path, n, BACKENDS[backend], tf
    def __len__(self): return self.n
    def __getitem__(self, i):
        x, y = self.tf(self.read(self.img_path), self.read(self.lab_path, label=True))
        return {'image': x, 'label': y}


def _init_worker(_):
    torch.set_num_threads(1)


def loader_rate(ds, workers: int, batch: int = 2) -> float:
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers, worker_init_fn=_init_worker,
                                     persistent_workers=False, prefetch_factor=2)
    it = iter(dl)
    for _ in range(workers): next(it)                                        # workers started and warm
    t, k = time.perf_counter(), 0
    for b in it: k += b['image'].shape[0]
    return k / (time.perf_counter() - t)


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'): cpu = line.split(':', 1)[1].strip(); break
    except OSError: pass
    try: commit = subprocess.run(['git', 'rev-parse', 'HEAD'], capture_output=True, text=True).stdout.strip()
    except OSError: commit = ''
    return {'cpu': cpu, 'cpu_count': os.cpu_count(), 'platform': platform.platform(), 'host': platform.node(),
            'python': platform.python_version(), 'torch': torch.__version__, 'torchvision': torchvision.__version__,
            'pillow': Image.__version__, 'numpy': np.__version__, 'git_commit': commit}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=12, help='timed samples per single-process measurement')
    ap.add_argument('--loader-samples', type=int, default=24, help='samples per DataLoader measurement')
    ap.add_argument('--out', default='book/results/cpu/data_pipeline_bench.json')
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    dc = DataConfig(dataset='cityscapes')                                    # the Cityscapes defaults
    tf = build_transforms(dc, train=True)
    g = torch.Generator().manual_seed(0)
    rows, res = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        img, lab = street_scene()
        paths = {'png': Path(tmp, 'img.png'), 'jpg': Path(tmp, 'img.jpg')}
        Image.fromarray(img).save(paths['png'])
        Image.fromarray(img).save(paths['jpg'], quality=90)
        lab_path = Path(tmp, 'lab.png'); Image.fromarray(lab).save(lab_path)
        sizes = {k: p.stat().st_size for k, p in paths.items()} | {'label_png': lab_path.stat().st_size}
        x0, y0 = read_image(paths['png']), read_label(lab_path)
        assert torch.equal(x0, read_pil(paths['png'])) and torch.equal(y0, read_pil(lab_path, True))
        t_tf = rate(lambda: tf(x0, y0, g), a.n)
        res['transform_only'] = t_tf
        rows.append(('transform only (from decoded tensors)', '-', '-', t_tf))
        for fmt in ('png', 'jpg'):
            for be, rd in BACKENDS.items():
                t_dec = rate(lambda: (rd(paths[fmt]), rd(lab_path, True)), a.n)
                t_all = rate(lambda: tf(rd(paths[fmt]), rd(lab_path, True), g), a.n)
                res[f'{fmt}_{be}_decode'] = t_dec; res[f'{fmt}_{be}_decode_transform'] = t_all
                rows.append(('decode image+label', fmt, be, t_dec))
                rows.append(('decode + transform', fmt, be, t_all))
        best = max(BACKENDS, key=lambda b: res[f'png_{b}_decode_transform'])
        for fmt in ('png', 'jpg'):
            for w in (1, 2):
                ds = FileDataset(paths[fmt], lab_path, a.loader_samples, best, tf)
                r = loader_rate(ds, w)
                res[f'{fmt}_{best}_loader_{w}w'] = r
                rows.append((f'DataLoader, {w} worker(s), total (per worker {r / w:.2f})', fmt, best, r))
    print(f"\nCityscapes-sized sample (1024×2048), pipeline: {tf!r}\n")
    print(f"{'measurement':58s} {'fmt':4s} {'backend':12s} {'samples/s':>9s}")
    for name, fmt, be, r in rows: print(f"{name:58s} {fmt:4s} {be:12s} {r:9.2f}")
    print(f"\nfile sizes: {sizes}; faster decode+transform backend on PNG: {best}")
    out = {'benchmark': 'data_pipeline', 'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
           'command': ' '.join([Path(sys.executable).name] + sys.argv), 'machine': machine(),
           'threads_per_process': 1, 'image_size': [1024, 2048], 'file_bytes': sizes, 'pipeline': repr(tf),
           'samples_per_s': res, 'faster_backend': best,
           'rows': [{'measurement': n, 'format': f, 'backend': b, 'samples_per_s': round(r, 3)} for n, f, b, r in rows]}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + '\n')
    print(f"wrote {a.out}")


if __name__ == '__main__':
    main()

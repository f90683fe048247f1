"""PyTorch twin of bench/cka-gpu.ts: unbiased minibatch HSIC of 36 synthetic sets on CUDA.

In the style of pytorch-cka (per batch: every layer's Gram with torch matmuls, U-centred, HSIC of
every pair accumulated), float32 on the GPU, accumulators in float64. Prints one JSON object.
Written for this benchmark; the estimator is Nguyen et al.'s minibatch unbiased HSIC.
"""
import json
import sys
import time

import torch


def u_centred(k):
    b = k.shape[0]
    k = k.clone()
    k.fill_diagonal_(0)
    r = k.sum(1)
    u = k - r[:, None] / (b - 2) - r[None, :] / (b - 2) + r.sum() / ((b - 1) * (b - 2))
    u.fill_diagonal_(0)
    return u


def main():
    cfg = json.loads(sys.argv[1])
    if not torch.cuda.is_available():
        raise SystemExit('no CUDA device visible to PyTorch')
    dev = torch.device('cuda')
    n, b, widths = cfg['n'], cfg['batchSize'], cfg['widths']
    m = 2 * len(widths)
    hsic = torch.zeros(m, m, dtype=torch.float64, device=dev)
    gen = torch.Generator(device=dev).manual_seed(0)
    seconds = 0.0
    for _ in range(n // b):
        sets = [torch.rand(b, d, device=dev, generator=gen) for d in widths for _kind in (0, 1)]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        grams = []
        for x in sets:
            xc = x - x.mean(0, keepdim=True)
            grams.append(u_centred(xc @ xc.T).flatten())
        g = torch.stack(grams)
        hsic += (g @ g.T).double() / (b * (b - 3))
        torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
    print(json.dumps({'seconds': seconds, 'torch': torch.__version__, 'device': torch.cuda.get_device_name(0)}))


main()

"""PyTorch twin of bench/train.ts: the same small ResNet, batch, optimizer and attack, images/s.

Prints one JSON object {method: images_per_second}. Run by `npm run bench:train` when
/usr/bin/python3 has torch; the model mirrors src/models/architectures.ts ('resnet-small').
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, stride, k=3):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout, momentum=0.1, eps=1e-5))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, stride)
        self.b = conv_bn(cout, cout, 1)
        self.proj = conv_bn(cin, cout, stride, k=1) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class SmallResNet(nn.Module):
    def __init__(self, width=16, stages=(1, 1, 1), classes=10):
        super().__init__()
        self.stem = conv_bn(3, width, 1)
        blocks, cin = [], width
        for s, n in enumerate(stages):
            for b in range(n):
                cout = width * 2 ** s
                blocks.append(Block(cin, cout, 2 if s > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.features_dim = cin
        self.fc = nn.Linear(cin, classes)

    def features(self, x):
        return F.adaptive_avg_pool2d(self.blocks(F.relu(self.stem(x))), 1).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


def pgd(model, x, y, eps, step, steps):
    # Inference-mode attack with a uniform random start, as robustsim's pgdAttack.
    model.eval()
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        loss = F.cross_entropy(model(xa), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xa)
        xa = torch.min(torch.max(xa.detach() + step * g.sign(), x - eps), x + eps).clamp(0, 1)
    model.train()
    return xa.detach()


def nt_xent(z1, z2, tau):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.t() / tau
    sim.fill_diagonal_(-1e9)
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    bs, steps, warmup = cfg["batch"], cfg["steps"], cfg["warmup"]
    x = torch.rand(bs, 3, 32, 32)
    y = torch.randint(0, 10, (bs,))
    x2, y2 = torch.cat([x, torch.flip(x, dims=[3])]), torch.cat([y, y])
    out = {}
    for method in cfg["methods"]:
        model = SmallResNet()
        head = nn.Sequential(nn.Linear(model.features_dim, model.features_dim), nn.ReLU(), nn.Linear(model.features_dim, 128))
        opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-3)
        model.train()

        def step():
            if method == "sl-st":
                loss = F.cross_entropy(model(x), y)
            elif method == "sl-st-256":
                loss = F.cross_entropy(model(x2), y2)
            elif method == "sl-pgd":
                a = cfg["attack"]
                loss = F.cross_entropy(model(pgd(model, x, y, a["eps"], a["stepSize"], a["steps"])), y)
            elif method == "cl-st":
                # Two views made outside the timed graph (flip); robustsim's figure includes its augmentation.
                v2 = torch.flip(x, dims=[3])
                f = model.features(torch.cat([x, v2]))
                z = head(f)
                loss = nt_xent(z[:bs], z[bs:], 0.5) + F.cross_entropy(model.fc(f[:bs].detach()), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for _ in range(warmup):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        images = 2 * bs if method == "sl-st-256" else bs
        out[method] = images * steps / (time.perf_counter() - t0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

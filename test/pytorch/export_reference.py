"""Reference side of test/onnx-import.test.ts: export models from PyTorch to ONNX and record what
PyTorch computes on fixed inputs (logits, intermediate activations, input gradient of the
cross-entropy), as .npy files the TypeScript test compares against. Usage: export_reference.py OUT_DIR"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torchvision


class SmallCnn(nn.Module):
    """Grouped, dilated and depthwise convolutions, input normalisation inside the graph."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.grouped = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=4)
        self.depthwise = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.act = nn.LeakyReLU(0.1)
        self.pool = nn.AvgPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.GELU(), nn.Linear(32, 10))

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = torch.relu(self.bn(self.stem(x)))
        x = self.act(self.grouped(x))
        x = torch.tanh(self.depthwise(x))
        x = self.pool(x)
        return self.head(x)


def capture(model, names):
    acts = {}
    modules = dict(model.named_modules())
    for name in names:
        modules[name].register_forward_hook(lambda m, i, o, name=name: acts.__setitem__(name, o.detach().numpy()))
    return acts


def export(model, name, taps, out, opset, n=4):
    model.eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    torch.onnx.export(model, x[:1], os.path.join(out, f"{name}.onnx"), opset_version=opset,
                      training=torch.onnx.TrainingMode.PRESERVE,
                      input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    acts = capture(model, taps)
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    loss = nn.functional.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, xg)
    np.save(os.path.join(out, f"{name}.input.npy"), x.numpy())
    np.save(os.path.join(out, f"{name}.labels.npy"), y.numpy().astype(np.int32))
    np.save(os.path.join(out, f"{name}.logits.npy"), logits.detach().numpy())
    np.save(os.path.join(out, f"{name}.grad.npy"), grad.numpy())
    for t in taps:
        np.save(os.path.join(out, f"{name}.act.{t}.npy"), acts[t])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=10)
    # Non-trivial BatchNorm statistics, so inference-mode BN is really exercised.
    for m in resnet.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    export(resnet, "resnet18", ["conv1", "maxpool", "layer1", "layer2.0", "layer3", "layer4", "avgpool"], out, 13)
    small = SmallCnn()
    for m in small.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    export(small, "small_cnn", ["stem", "bn", "grouped", "depthwise", "pool", "head.1"], out, 17)


if __name__ == "__main__":
    main()

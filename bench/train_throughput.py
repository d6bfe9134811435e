#!/usr/bin/python3
"""The baseline of bench/train_bench.sh (CPU) and bench/gpu/run.sh (GPU): one-rank training
throughput of a CIFAR-style ResNet (depth 6n+2) in PyTorch's Python eager API, with the same data
path as the ocs worker (the uint8 split resident on the training device, batches gathered per
step, random crop with 4 pixels of padding, flip and normalisation as batched tensor ops), the same
optimizer (SGD, Nesterov, weight decay; PyTorch's default multi-tensor implementation on GPUs), and
on GPUs cuDNN autotuning, channels-last tensors and optionally bf16 autocast, as a performance-aware
user would write it; `--defaults` leaves both at PyTorch's defaults (no autotuning, NCHW tensors),
as a first script does. The loss is summed on the device and read once per epoch.
Prints one JSON line per epoch: {"epoch": e, "images_per_second": x, "loss": l}.

On CPU run it with Debian's python3-torch (the LibTorch 1.13 the worker links); on a GPU host
with its PyTorch."""
import argparse
import gzip
import json
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic == 0x803:
        rows, cols = struct.unpack(">II", data[8:16])
        return torch.frombuffer(bytearray(data[16:]), dtype=torch.uint8).view(count, 1, rows, cols)
    return torch.frombuffer(bytearray(data[8:]), dtype=torch.uint8).long()


class Block(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv_a = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(planes)
        self.conv_b = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn_a(self.conv_a(x)))
        y = self.bn_b(self.conv_b(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class CifarResNet(nn.Module):
    def __init__(self, depth, channels, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, inp = [], 16
        for stage, planes in enumerate([16, 32, 64]):
            for block in range((depth - 2) // 6):
                layers.append(Block(inp, planes, 2 if stage > 0 and block == 0 else 1))
                inp = planes
        self.blocks = nn.Sequential(*layers)
        self.classifier = nn.Linear(64, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv1(x))))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def preprocess(images, mean, std, generator, channels_last):
    x = images.float().div_(255)
    b, c, h, w = x.shape
    device = x.device
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=generator, device=device)
    dx = torch.randint(0, 9, (b,), generator=generator, device=device)
    flip = torch.rand(b, generator=generator, device=device) < 0.5
    rows = (dy.view(b, 1) + torch.arange(h, device=device)).view(b, 1, h, 1).expand(b, c, h, w + 8)
    cols = (dx.view(b, 1) + torch.arange(w, device=device)).view(b, 1, 1, w).expand(b, c, h, w)
    x = padded.gather(2, rows).gather(3, cols)
    x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def synthetic(count, shape, classes, generator):
    """Class prototypes plus noise, as uint8 images (the worker's synthetic set, in spirit)."""
    prototypes = torch.rand((classes, *shape), generator=generator)
    labels = torch.randint(0, classes, (count,), generator=generator)
    noise = torch.randn((count, *shape), generator=generator) * 0.25
    images = ((prototypes[labels] + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                        help="Fashion-MNIST folder, or 'synthetic' for CIFAR-shaped images")
    parser.add_argument("--depth", type=int, default=20, help="ResNet depth (6n+2): 20, 56, ...")
    parser.add_argument("--train-limit", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--defaults", action="store_true",
                        help="no cuDNN autotuning and no channels-last tensors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    tuned = cuda and not args.defaults
    torch.backends.cudnn.benchmark = tuned
    generator = torch.Generator().manual_seed(1)
    if args.data == "synthetic":
        images, labels = synthetic(args.train_limit, (3, 32, 32), 10, generator)
    else:
        images = read_idx(f"{args.data}/train-images-idx3-ubyte.gz")[: args.train_limit]
        labels = read_idx(f"{args.data}/train-labels-idx1-ubyte.gz")[: args.train_limit]
    pixels = images.float().div(255)
    mean = pixels.mean((0, 2, 3)).view(1, -1, 1, 1).to(device)
    std = pixels.std((0, 2, 3)).view(1, -1, 1, 1).to(device)
    images, labels = images.to(device), labels.to(device)
    model = CifarResNet(args.depth, images.shape[1], 10).to(device)
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    augment = torch.Generator(device=device).manual_seed(1)
    steps = images.shape[0] // args.batch
    for epoch in range(args.epochs):
        order = torch.randperm(images.shape[0], generator=generator).to(device)
        loss_sum = torch.zeros((), device=device)
        start, seen = time.perf_counter(), 0
        model.train()
        for step in range(steps):
            index = order[step * args.batch:(step + 1) * args.batch]
            x = preprocess(images.index_select(0, index), mean, std, augment, tuned)
            y = labels.index_select(0, index)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=args.precision == "bf16"):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            seen += y.shape[0]
        loss = loss_sum.item()  # waits for the device
        print(json.dumps({"epoch": epoch,
                          "images_per_second": seen / (time.perf_counter() - start),
                          "loss": loss / steps}), flush=True)


if __name__ == "__main__":
    main()

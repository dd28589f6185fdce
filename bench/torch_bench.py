#!/usr/bin/python3
"""PyTorch reference timings for l2rw's benchmark (bench/run.sh).

Same networks, batch sizes, thread count and synthetic data shape as
`l2rw bench`; times (median of --reps after --warmup) of

  plain  one training step: forward, mean cross entropy, backward,
         SGD update with momentum 0.9 and weight decay 5e-4;
  fwd    a forward pass alone (no autograd graph kept: torch.no_grad);
  fwdbwd forward + loss + backward (graph kept), no update;
  l2rw   the reference Learning-to-Reweight step as the public
         reimplementations do it (Ren et al. 2018, Algorithm 1):
           eps = 0 (requires_grad), weighted training loss at theta
           through a functional copy of the parameters,
           g = autograd.grad(loss, params, create_graph=True),
           theta_hat = theta - alpha * g,
           validation loss at theta_hat (functional call),
           grad_eps = autograd.grad(val_loss, eps),
           w = max(-grad_eps, 0) / sum,
           then the real forward + weighted loss + backward + SGD step.

Output: one line per measurement, `torch <key> <ms>` (median), with a final
summary line (medians, and the fastest repetitions as *_min_ms) `torch model=... plain_ms=... l2rw_ms=... ratio=...` that
bench/run.sh parses.

Usage: torch_bench.py [--model lenet|resnet32] [--batch N] [--val-batch M]
                      [--threads T] [--reps R] [--warmup W]
                      [--input CxHxW] [--classes K] [--seed S]
                      [--device cpu|cuda[:N]]

--device cuda: the net, the data and every step on the GPU in FP32 (TF32
off for matrix products and cuDNN's convolutions, as l2rw's CUDA back end
computes), each timed repetition ending with torch.cuda.synchronize (the
GPU runs asynchronously); the summary line then names the device.
"""

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

try:  # torch >= 2.0
    from torch.func import functional_call
except ImportError:  # torch 1.13 (Debian's python3-torch)
    from torch.nn.utils.stateless import functional_call


class LeNet(nn.Module):
    """conv5x5x16-relu-pool2, conv5x5x32-relu-pool2, dense100-relu,
    dense classes: l2rw's `lenet` (valid convolutions, with bias)."""

    def __init__(self, c, h, w, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 16, 5)
        self.conv2 = nn.Conv2d(16, 32, 5)
        hh = ((h - 4) // 2 - 4) // 2
        ww = ((w - 4) // 2 - 4) // 2
        self.fc1 = nn.Linear(32 * hh * ww, 100)
        self.fc2 = nn.Linear(100, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class BasicBlock(nn.Module):
    """conv3x3-bn-relu-conv3x3-bn, plus shortcut, relu. The shortcut is the
    identity, or where shape changes a 1x1 strided convolution + batch
    norm (option B of He et al.), matching l2rw's zoo."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                nn.BatchNorm2d(cout))

    def forward(self, x):
        o = F.relu(self.bn1(self.conv1(x)))
        o = self.bn2(self.conv2(o))
        s = x if self.short is None else self.short(x)
        return F.relu(o + s)


class ResNet(nn.Module):
    """CIFAR ResNet-(6k+2): conv3x3x16-bn-relu, 3 stages of k basic blocks
    (16, 32, 64 maps, stride 2 at stages 2 and 3), global average pool,
    dense to classes."""

    def __init__(self, depth, c, classes):
        super().__init__()
        k = (depth - 2) // 6
        self.conv = nn.Conv2d(c, 16, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        blocks = []
        cin = 16
        for stage, cout in enumerate((16, 32, 64)):
            for b in range(k):
                stride = 2 if (stage > 0 and b == 0) else 1
                blocks.append(BasicBlock(cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.blocks(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def build(model, c, h, w, classes):
    if model == "lenet":
        return LeNet(c, h, w, classes)
    if model.startswith("resnet"):
        depth = int(model[len("resnet"):])
        if (depth - 2) % 6 != 0:
            raise SystemExit("resnet depth must be 6k+2")
        return ResNet(depth, c, classes)
    raise SystemExit("unknown model " + model)


def timed(fn, reps, warmup, sync):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), min(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="lenet")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--val-batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--input", default=None)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--alpha", type=float, default=0.1,
                    help="look-ahead learning rate of the reference step")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = lambda: None
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        sync = lambda: torch.cuda.synchronize(dev)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.input is None:
        a.input = "1x28x28" if a.model == "lenet" else "3x32x32"
    c, h, w = (int(v) for v in a.input.split("x"))

    net = build(a.model, c, h, w, a.classes).to(dev)
    net.train()
    nparams = sum(p.numel() for p in net.parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9,
                          weight_decay=5e-4)
    x = torch.randn(a.batch, c, h, w)
    y = torch.randint(0, a.classes, (a.batch,))
    xv = torch.randn(a.val_batch, c, h, w)
    yv = torch.randint(0, a.classes, (a.val_batch,))
    x, y, xv, yv = x.to(dev), y.to(dev), xv.to(dev), yv.to(dev)

    def plain():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def fwd():
        with torch.no_grad():
            net(x)

    def fwdbwd():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()

    names = [n for n, _ in net.named_parameters()]

    def l2rw():
        params = [p for p in net.parameters()]
        # Look-ahead: theta_hat(eps) = theta - alpha * grad sum eps_i l_i.
        eps = torch.zeros(a.batch, requires_grad=True, device=dev)
        pdict = dict(zip(names, params))
        li = F.cross_entropy(functional_call(net, pdict, (x,)), y,
                             reduction="none")
        g = torch.autograd.grad((eps * li).sum(), params, create_graph=True)
        hat = {n: p - a.alpha * gi for n, p, gi in zip(names, params, g)}
        lv = F.cross_entropy(functional_call(net, hat, (xv,)), yv)
        geps = torch.autograd.grad(lv, eps)[0]
        wt = torch.clamp(-geps, min=0)
        s = wt.sum()
        wt = wt / s if s > 0 else wt
        # The real step with the weights.
        opt.zero_grad(set_to_none=True)
        li = F.cross_entropy(net(x), y, reduction="none")
        (wt.detach() * li).sum().backward()
        opt.step()

    res = {}
    for key, fn in (("fwd", fwd), ("fwdbwd", fwdbwd), ("plain", plain),
                    ("l2rw", l2rw)):
        res[key + "_ms"], res[key + "_min_ms"] = timed(fn, a.reps, a.warmup,
                                                       sync)
    head = ("torch model=%s batch=%d val_batch=%d threads=%d params=%d "
            "torch_version=%s" % (a.model, a.batch, a.val_batch, a.threads,
                                  nparams, torch.__version__))
    if dev.type != "cpu":
        head += " device=%s gpu=%s" % (
            dev, torch.cuda.get_device_name(dev).replace(" ", "_"))
    for k in ("fwd_ms", "fwdbwd_ms", "plain_ms", "l2rw_ms"):
        print("torch %s %.3f" % (k, res[k]))
    print("%s plain_ms=%.3f l2rw_ms=%.3f plain_min_ms=%.3f l2rw_min_ms=%.3f "
          "ratio=%.3f" %
          (head, res["plain_ms"], res["l2rw_ms"], res["plain_min_ms"],
           res["l2rw_min_ms"], res["l2rw_ms"] / res["plain_ms"]))


if __name__ == "__main__":
    main()

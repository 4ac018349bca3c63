#!/usr/bin/python3
"""Reference PyTorch timing of one SupSup (Supermasks in Superposition) training step.

This is a minimal, faithful PyTorch version of the per-task mask-training step of
SupSup (Wortsman et al., NeurIPS 2020), used only to put a CPU training-speed figure
next to the TypeScript implementation. It is not part of the project build.

Model (bias-free MLP, as in the paper's LeNet 300-100 setting):
  * lenet  : 784-300-100-100  (hidden 300, 100; 100 outputs)
  * fc1024 : 784-1024-1024-100
  * fixed signed-constant weights  w = ±sqrt(2 / fan_in)   (requires_grad=False)
  * per-layer real-valued scores   s ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  * mask = (s >= 0), straight-through estimator (gradient passed unchanged)
  * effective weight = w * mask;  ReLU between layers, none after the last
  * loss = cross-entropy over all 100 outputs; labels drawn from [0, 10)
  * optimiser = torch.optim.RMSprop(scores, lr=1e-4)

Timing: batches of 128 random normalised inputs are generated on the CPU before the
clock starts (data loading excluded). Warm-up steps are run first, then --steps steps
are timed with time.perf_counter(). Reports samples/s and ms/step.

Use Debian's torch with the system interpreter:
  /usr/bin/python3 docs/reference/pytorch_supsup_train_bench.py --threads 1 --json
"""

import argparse
import json
import math
import time

import torch
import torch.nn.functional as F

ARCHS = {
    "lenet": [784, 300, 100, 100],
    "fc1024": [784, 1024, 1024, 100],
}


class GetSubnet(torch.autograd.Function):
    """Binary mask (scores >= 0) with a straight-through gradient."""

    @staticmethod
    def forward(ctx, scores):
        return (scores >= 0).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


class SupermaskMLP(torch.nn.Module):
    def __init__(self, sizes, generator):
        super().__init__()
        weights = []
        scores = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            # Signed constant: sign drawn uniformly, magnitude sqrt(2 / fan_in).
            sign = torch.randint(0, 2, (fan_out, fan_in), generator=generator).float() * 2 - 1
            weights.append(torch.nn.Parameter(sign * math.sqrt(2.0 / fan_in), requires_grad=False))
            bound = 1.0 / math.sqrt(fan_in)
            s = torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator)
            scores.append(torch.nn.Parameter(s))
        self.weights = torch.nn.ParameterList(weights)
        self.scores = torch.nn.ParameterList(scores)

    def forward(self, x):
        n = len(self.weights)
        for i, (w, s) in enumerate(zip(self.weights, self.scores)):
            x = F.linear(x, w * GetSubnet.apply(s))  # no bias
            if i < n - 1:
                x = F.relu(x)
        return x


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, choices=[1, 2], default=1)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--arch", choices=sorted(ARCHS), default="lenet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    sizes = ARCHS[args.arch]
    model = SupermaskMLP(sizes, g)
    opt = torch.optim.RMSprop(list(model.scores), lr=1e-4)

    # Pre-generate all batches (excluded from timing). "Normalised" inputs: N(0, 1).
    total = args.warmup + args.steps
    n_distinct = min(total, 64)  # cycle through a fixed pool to bound memory
    xs = [torch.randn(args.batch, sizes[0], generator=g) for _ in range(n_distinct)]
    ys = [torch.randint(0, 10, (args.batch,), generator=g) for _ in range(n_distinct)]

    def step(i):
        x, y = xs[i % n_distinct], ys[i % n_distinct]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)  # over all 100 outputs
        loss.backward()
        opt.step()
        return loss

    for i in range(args.warmup):
        step(i)
    t0 = time.perf_counter()
    for i in range(args.warmup, total):
        loss = step(i)
    loss_value = float(loss)  # CPU: synchronous, but read it once after the loop
    dt = time.perf_counter() - t0

    ms_per_step = dt * 1000.0 / args.steps
    samples_per_s = args.steps * args.batch / dt
    result = {
        "torch": torch.__version__,
        "arch": args.arch,
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "steps": args.steps,
        "samples_per_s": round(samples_per_s, 1),
        "ms_per_step": round(ms_per_step, 4),
        "final_loss": round(loss_value, 4),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"torch {result['torch']}  arch {args.arch}  threads {result['threads']}  "
            f"batch {args.batch}  steps {args.steps}: {samples_per_s:.0f} samples/s, "
            f"{ms_per_step:.3f} ms/step (final loss {loss_value:.4f})"
        )


if __name__ == "__main__":
    main()

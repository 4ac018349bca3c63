#!/usr/bin/python3
"""Reference PyTorch timing of SupSup one-shot task inference with stacked float masks.

The reference SupSup code (Wortsman et al., NeurIPS 2020; MultitaskMaskLinear) keeps every
learned mask as a float tensor, stacks them per layer (k, fan_out, fan_in) once ("cache_masks"),
and infers the task of a batch by one gradient step on the superposition coefficients:

    subnet_l = (alphas.view(k, 1, 1) * stacked_l).sum(0)      alphas = 1/k, requires_grad
    w_l = weight_l * subnet_l;  logits = MLP(x);  H = mean entropy of softmax(logits)
    task = argmin(dH/dalphas)

This script times exactly that on the CPU, with k random binary masks (about half the weights
on, as float32 0/1) for a 784-300-100-s LeNet without biases, signed-constant weights, a batch of
128 random inputs. It reports ms per batch and the process's peak resident memory. It is used
only to put a peer figure next to `supsupd bench oneshot`; it is not part of the project build.

  /usr/bin/python3 docs/reference/pytorch_supsup_oneshot_bench.py --masks 2500 --outputs 500 --json
"""

import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--masks", type=int, default=2500)
    p.add_argument("--hidden", default="300,100")
    p.add_argument("--outputs", type=int, default=500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(args.seed)
    sizes = [784] + [int(h) for h in args.hidden.split(",")] + [args.outputs]
    k = args.masks

    weights, stacked = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        sign = torch.randint(0, 2, (fan_out, fan_in), generator=g).float() * 2 - 1
        weights.append(sign * math.sqrt(2.0 / fan_in))
        # The cached stack of k float masks, as cache_masks() builds it.
        stacked.append((torch.rand((k, fan_out, fan_in), generator=g) < 0.5).float())
    x = torch.randn((args.batch, 784), generator=g)

    def infer():
        alphas = torch.full((k, 1, 1), 1.0 / k, requires_grad=True)
        h = x
        for i, (w, s) in enumerate(zip(weights, stacked)):
            subnet = (alphas * s).sum(dim=0)
            h = F.linear(h, w * subnet)
            if i < len(weights) - 1:
                h = F.relu(h)
        logp = F.log_softmax(h, dim=1)
        entropy = -(logp.exp() * logp).sum(dim=1).mean()
        (grad,) = torch.autograd.grad(entropy, alphas)
        return int(torch.argmin(grad.view(k)))

    infer()  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        task = infer()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    result = {
        "torch": torch.__version__,
        "shape": "-".join(str(s) for s in sizes),
        "masks": k,
        "threads": args.threads,
        "batch": args.batch,
        "ms_per_batch_min": round(times[0], 1),
        "ms_per_batch_median": round(times[len(times) // 2], 1),
        "stacked_mask_bytes": sum(s.numel() * 4 for s in stacked),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "task": task,
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()

"""``labkit bench-gptq``: how long full GPTQ takes on one LLM-sized linear, against round-to-nearest.

Timed in the same run, on the same seeded layer: the Hessian ``2 XᵀX`` of the calibration tokens,
GPTQ itself (Cholesky inverse + the column loop), and round-to-nearest (``fake_quantize`` with the
same format and granularity) as the baseline. The default shapes are Qwen3-1.7B's MLP:
``up_proj`` (in 2048 → out 6144, weight (6144, 2048)) and ``down_proj`` (in 6144 → out 2048,
weight (2048, 6144)), with 2048 calibration tokens. GPTQ's cost grows with ``in``: the Hessian
is (in, in), its Cholesky is O(in³) and the column loop runs ``in`` times, so down_proj is the
expensive one.

The calibration inputs are synthetic but correlated (a low-rank mix plus noise, like real hidden
states), so the printed output errors show GPTQ's gain over round-to-nearest, not just its cost.
The machine's load average is printed with the timings: the lab's machines are shared, and a
time measured on a busy machine means little without it. GPTQ's column loop always runs on one
thread (see ``gptq_full.py``); ``--threads`` sets the count for the large matrix products.

    labkit bench-gptq                       # both Qwen3-1.7B MLP shapes, int4 per row
    labkit bench-gptq --out 64 --in 128 --tokens 256 --json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from labkit.quant import PerGroup, PerRow, fake_quantize, symmetric_int
from labkit.quant.gptq_full import gptq_quantize_hessian, hessian

QWEN3_1_7B_MLP = {"up_proj": (6144, 2048), "down_proj": (2048, 6144)}  # name: (out, in)
TARGET_SECONDS = 5.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=int, help="output features of a custom layer (with --in)")
    p.add_argument("--in", dest="in_features", type=int, help="input features of a custom layer")
    p.add_argument("--shape", choices=[*QWEN3_1_7B_MLP, "both"], default="both",
                   help="Qwen3-1.7B MLP shape(s) to time when --out/--in are not given (default both)")
    p.add_argument("--tokens", type=int, default=2048, help="calibration tokens (default 2048)")
    p.add_argument("--bits", type=int, default=4, help="symmetric integer bits, 2..8 (default 4)")
    p.add_argument("--group", type=int, default=0, help="group size along in; 0 = one scale per row")
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads for the run (default: torch's own choice); on a shared, busy machine 1 can be faster")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def synthetic_layer(out_f: int, in_f: int, tokens: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A weight ``(out, in)`` of LLM-like size and correlated inputs ``(tokens, in)``."""
    g = torch.Generator().manual_seed(seed)
    rank = max(1, in_f // 16)
    X = torch.randn(tokens, rank, generator=g) @ torch.randn(rank, in_f, generator=g) / rank**0.5
    X += 0.1 * torch.randn(tokens, in_f, generator=g)
    W = torch.randn(out_f, in_f, generator=g) * in_f**-0.5
    return W, X


def time_layer(name: str, out_f: int, in_f: int, args: argparse.Namespace) -> dict:
    W, X = synthetic_layer(out_f, in_f, args.tokens, args.seed)
    granularity = PerGroup(args.group) if args.group else PerRow()
    fmt = symmetric_int(args.bits)

    t_rtn = float("inf")
    for _ in range(3):  # RTN takes milliseconds: the best of three filters out scheduler noise
        t0 = time.perf_counter()
        w_rtn = fake_quantize(W, fmt, granularity)
        t_rtn = min(t_rtn, time.perf_counter() - t0)

    t0 = time.perf_counter()
    H = hessian(X)
    t_h = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = gptq_quantize_hessian(W, H, n_bits=args.bits, granularity=granularity)
    t_gptq = time.perf_counter() - t0

    ref = torch.linalg.norm(X @ W.T).item()
    return {
        "layer": name, "out": out_f, "in": in_f, "weight_shape": [out_f, in_f], "tokens": args.tokens,
        "format": fmt.name, "granularity": repr(granularity),
        "rtn_seconds": t_rtn, "hessian_seconds": t_h, "gptq_seconds": t_gptq,
        "gptq_total_seconds": t_h + t_gptq, "gptq_over_rtn": (t_h + t_gptq) / max(t_rtn, 1e-9),
        "rel_output_error_rtn": torch.linalg.norm(X @ (W - w_rtn).T).item() / ref,
        "rel_output_error_gptq": torch.linalg.norm(X @ (W - res.weight).T).item() / ref,
    }


def run(args: argparse.Namespace) -> int:
    if (args.out is None) != (args.in_features is None):
        raise SystemExit("give both --out and --in for a custom layer, or neither for the Qwen3-1.7B shapes")
    if args.out is not None:
        layers = {"custom": (args.out, args.in_features)}
    else:
        names = list(QWEN3_1_7B_MLP) if args.shape == "both" else [args.shape]
        layers = {n: QWEN3_1_7B_MLP[n] for n in names}
    if min(min(s) for s in layers.values()) <= 0 or args.tokens <= 0:
        raise SystemExit("--out, --in and --tokens must be positive")
    symmetric_int(args.bits)  # fails early with the list of allowed bits
    if args.threads:
        torch.set_num_threads(args.threads)

    warm = argparse.Namespace(**{**vars(args), "tokens": 64})
    time_layer("warm-up", 16, 64, warm)  # first calls pay for lazy initialisation; not reported
    load_before = os.getloadavg()
    results = [time_layer(name, o, i, args) for name, (o, i) in layers.items()]
    report = {
        "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "loadavg_1min_before": load_before[0], "loadavg_1min_after": os.getloadavg()[0],
        "target_seconds": TARGET_SECONDS, "layers": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"GPTQ vs round-to-nearest, {results[0]['format']} {results[0]['granularity']}, "
          f"{args.tokens} calibration tokens, {report['threads']} torch threads on {report['cpu_count']} cores; "
          f"1-min load average {load_before[0]:.1f} before, {report['loadavg_1min_after']:.1f} after")
    for r in results:
        verdict = "within" if r["gptq_total_seconds"] <= TARGET_SECONDS else "over"
        print(f"{r['layer']:>9}: in={r['in']} → out={r['out']} (weight {r['out']}×{r['in']})  "
              f"RTN {r['rtn_seconds']:.3f} s | GPTQ {r['gptq_total_seconds']:.2f} s "
              f"(Hessian {r['hessian_seconds']:.2f} + GPTQ {r['gptq_seconds']:.2f}) = {r['gptq_over_rtn']:.0f}× RTN, "
              f"{verdict} the {TARGET_SECONDS:g} s target | relative output error "
              f"RTN {r['rel_output_error_rtn']:.4f} → GPTQ {r['rel_output_error_gptq']:.4f}")
    return 0

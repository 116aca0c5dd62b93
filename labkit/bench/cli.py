"""``labkit bench``: prefill/decode throughput of a quantized model vs its baseline, in one run.

    labkit bench --model default --scheme int8-row --mode real --phase decode --json
    labkit bench --scheme all --phase both --check-targets      # every real scheme, exit 1 on a miss
    labkit bench --kernels --json                               # QuantLinear vs nn.Linear, Qwen3-1.7B shapes
    labkit bench --roofline                                     # the worked roofline numbers
    labkit bench --engine nanovllm --model ~/models/Qwen3-1.7B --scheme int8-row   # CUDA only

With ``--json`` one JSON object goes to stdout: for a single (scheme, phase) the measurement itself
(``tokens_per_s``, ``baseline_tokens_per_s``, ``speedup``, ``phase``, ``scheme``, ``device``, weight
bytes, ``torch_threads``, ``repeats``, the per-repeat seconds, the target and whether it was met);
for several, ``{"results": [...], "all_targets_met": ...}``. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

from .timing import PHASES

DEFAULTS = dict(batch=1, prompt_len=128, gen_len=32, repeats=5, warmup=1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default", help="default, tiny-qwen3, a local HF folder or a hub id")
    parser.add_argument("--scheme", default=None,
                        help="a scheme name (int8-row, fp8-group128, none, ...), a comma list, or 'all' (every weight-only "
                             "8-bit scheme); default int8-row, or all with --kernels")
    parser.add_argument("--mode", choices=("real", "fake"), default="real")
    parser.add_argument("--phase", choices=PHASES + ("both",), default="decode")
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    parser.add_argument("--prompt-len", type=int, default=DEFAULTS["prompt_len"])
    parser.add_argument("--gen-len", type=int, default=DEFAULTS["gen_len"])
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    parser.add_argument("--warmup", type=int, default=DEFAULTS["warmup"])
    parser.add_argument("--include-lm-head", action=argparse.BooleanOptionalAction, default=True,
                        help="quantize the lm_head too (default: yes; it is a fifth of SmolLM2's decode bytes)")
    parser.add_argument("--runner", choices=("lean", "hf"), default="lean",
                        help="lean: labkit's minimal decoder loop (default); hf: the transformers forward")
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                        help="CPU: torch.compile'd fused dequant-GEMV kernels (labkit.nn.fused; default yes; "
                             "the first call of each shape compiles)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=("hf", "nanovllm"), default="hf",
                        help="nanovllm: a quantized nano-vllm LLM (CUDA only; see labkit.engines.nanovllm)")
    parser.add_argument("--kernels", action="store_true", help="kernel micro-benchmarks instead of a model run")
    parser.add_argument("--roofline", action="store_true", help="print the roofline numbers and exit")
    parser.add_argument("--check-targets", action="store_true", help="exit 1 if a speed target is missed")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def resolve_schemes(text: str) -> list[str]:
    """``"all"`` → every 8-bit scheme; ``"a,b"`` → both; unknown names fail listing the known ones."""
    from labkit.schemes import WeightOnly, get_scheme, scheme_names

    if text == "all":
        return [n for n in scheme_names() if isinstance(get_scheme(n), WeightOnly)]
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        get_scheme(name)  # raises with the list of known schemes
    return names


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run_model(args: argparse.Namespace, device: str) -> list[dict]:
    """Measure every requested (scheme, phase); the fused CPU kernels are on only inside this call."""
    if device == "cpu" and args.fused:
        from labkit.nn import fused

        with fused.enabled():
            return _measure(args, device)
    return _measure(args, device)


def _measure(args: argparse.Namespace, device: str) -> list[dict]:
    from labkit.models import load_model
    from labkit.nn import quantize_model
    from labkit.schemes import WeightOnly, get_scheme

    from .targets import target_for
    from .throughput import Environment, matmul_weight_bytes, model_bytes, random_prompt, time_pair

    schemes = resolve_schemes(args.scheme or "int8-row")
    phases = list(PHASES) if args.phase == "both" else [args.phase]
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    _say(f"loading {args.model} ({dtype}, {device}) ...")
    baseline, _ = load_model(args.model, dtype=dtype, device=device)
    ids = random_prompt(baseline.config.vocab_size, args.batch, args.prompt_len, args.seed, device)
    base_bytes, base_mm = model_bytes(baseline), matmul_weight_bytes(baseline)
    results = []
    for name in schemes:
        scheme = get_scheme(name)
        quantized = quantize_model(baseline, scheme, args.mode, include_lm_head=args.include_lm_head).model
        for phase in phases:
            env_before = Environment.capture(device)
            _say(f"{name} {args.mode} {phase}: {args.warmup} warm-up + {args.repeats} interleaved repeats ...")
            t = time_pair(baseline, quantized, phase, ids, args.gen_len, args.repeats, args.warmup, args.runner)
            fmt = getattr(scheme, "fmt", "")
            # the lab's targets are for weight-only schemes (W8A8 on CPU has no fast int8 GEMM to meet them)
            target = target_for(name, fmt, phase, args.mode) if isinstance(scheme, WeightOnly) else None
            row = {
                "model": args.model, "scheme": name, "mode": args.mode, **t.as_dict(),
                "device": device, "dtype": str(dtype).replace("torch.", ""), "runner": args.runner,
                "kernels": "fused" if device == "cpu" and args.fused else "eager",
                "include_lm_head": args.include_lm_head, "repeats": args.repeats, "warmup": args.warmup,
                "weight_bytes": model_bytes(quantized), "baseline_weight_bytes": base_bytes,
                "matmul_weight_bytes": matmul_weight_bytes(quantized), "baseline_matmul_weight_bytes": base_mm,
                "torch_threads": env_before.torch_threads, "torch_version": env_before.torch_version,
                "cpu": env_before.cpu, "load_avg_before": env_before.load_avg_1min,
                "load_avg_after": Environment.capture(device).load_avg_1min,
                "target": None if target is None else target.min_speedup,
                "target_met": None if target is None else t.speedup >= target.min_speedup,
            }
            _say(f"  {row['tokens_per_s']:.1f} tok/s vs {row['baseline_tokens_per_s']:.1f} baseline: "
                 f"{row['speedup']:.2f}x" + ("" if target is None else f" (target {target.min_speedup}x)"))
            results.append(row)
        del quantized
    return results


def _print_table(rows: list[dict]) -> None:
    print(f"{'scheme':14} {'phase':8} {'tok/s':>9} {'base tok/s':>11} {'speedup':>8} {'target':>7}  MB (mm weights)")
    for r in rows:
        tgt = "" if r["target"] is None else f"{r['target']:.1f}{'✓' if r['target_met'] else '✗'}"
        print(f"{r['scheme']:14} {r['phase']:8} {r['tokens_per_s']:9.1f} {r['baseline_tokens_per_s']:11.1f} "
              f"{r['speedup']:7.2f}x {tgt:>7}  {r['matmul_weight_bytes'] / 1e6:.0f} vs {r['baseline_matmul_weight_bytes'] / 1e6:.0f}")
    if rows:
        r = rows[0]
        print(f"device {r['device']} ({r['cpu']}), {r['torch_threads']} threads, runner {r['runner']}, "
              f"batch {r['batch']}, prompt {r['prompt_len']}, gen {r['gen_len']}, {r['repeats']} repeats, "
              f"load avg {r['load_avg_before']:.1f}→{r['load_avg_after']:.1f}")


def _roofline() -> dict:
    from .roofline import HARDWARE, roofline

    out = {}
    for label, params in (("smollm2-135m", 134_479_872), ("qwen3-1.7b", 1_720_451_072)):
        for hw in HARDWARE.values():
            for phase, tokens in (("decode", 1), ("prefill", 1024)):
                for wbytes, math in ((2, "bf16"), (1, "int8"), (1, "fp8")):
                    key = f"{label}/{hw.name}/{phase}/{wbytes}B-weights/{math}-math"
                    out[key] = roofline(params, tokens, wbytes, hw.tflops[math], hw.bandwidth_gb_s).as_dict()
    return out


def run(args: argparse.Namespace) -> int:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if torch.get_num_threads() > 1 and load > cores:
        # measured here: int8-row decode at 2 threads and load 8 on 2 cores gave 0.27x, at 1 thread 2.0x
        print(f"labkit bench: load average {load:.1f} on {cores} cores — {torch.get_num_threads()} threads will "
              "keep waiting for each other at every barrier; use --threads 1 for meaningful ratios", file=sys.stderr)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        if args.roofline:
            rows = _roofline()
            if args.json:
                print(json.dumps(rows))
            else:
                for k, r in rows.items():
                    print(f"{k:60} {r['bound']:7} compute {r['compute_s'] * 1e3:8.3f} ms  memory {r['memory_s'] * 1e3:8.3f} ms")
            return 0
        if args.kernels:
            from .kernels import as_dicts, bench_kernels, machine_peaks

            schemes = resolve_schemes(args.scheme or "all")
            peaks = machine_peaks()
            if device == "cpu" and args.fused:
                from labkit.nn import fused

                with fused.enabled():
                    rows = as_dicts(bench_kernels(schemes, repeats=args.repeats))
            else:
                rows = as_dicts(bench_kernels(schemes, repeats=args.repeats))
            if args.json:
                print(json.dumps({"machine": peaks, "torch_threads": torch.get_num_threads(),
                                  "fused": device == "cpu" and args.fused, "kernels": rows}))
            else:
                print(f"machine: {peaks['stream_gb_s']:.1f} GB/s read, {peaks['fp32_gflops']:.0f} GFLOP/s fp32 GEMM")
                for r in rows:
                    print(f"{r['scheme']:14} {r['in_features']:5}->{r['out_features']:<5} M={r['tokens']:<4} "
                          f"{r['seconds'] * 1e6:9.0f} us vs {r['baseline_seconds'] * 1e6:9.0f} us  "
                          f"{r['speedup']:5.2f}x  {r['weight_gb_s']:6.1f} GB/s")
            return 0
        if args.engine == "nanovllm":
            from labkit.engines.nanovllm import bench_nanovllm

            rows = bench_nanovllm(args)
        else:
            rows = _run_model(args, device)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        print(f"labkit bench: {err}", file=sys.stderr)
        return 2
    missed = [r for r in rows if r.get("target_met") is False]
    if args.json:
        if len(rows) == 1:
            print(json.dumps(rows[0]))
        else:
            print(json.dumps({"results": rows, "all_targets_met": not missed}))
    else:
        _print_table(rows)
    if args.check_targets and missed:
        for r in missed:
            print(f"target missed: {r['scheme']} {r['phase']} {r['speedup']:.2f}x < {r['target']}x", file=sys.stderr)
        return 1
    return 0

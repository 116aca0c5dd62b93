"""``labkit bench``: every benchmark of the lab, one command with modes.

    labkit bench --scheme int8-row --phase decode --threads 1 --roofline       # throughput (default mode)
    labkit bench --scheme all --phase both --threads 1 --scaling-threads 2 --roofline --check-targets
    labkit bench kernels --scheme int8-row,fp8-row --json   # one QuantLinear vs nn.Linear, Qwen3-1.7B shapes
    labkit bench roofline                                    # the worked spec-sheet rooflines (RTX 4090, H100)
    labkit bench nanovllm --model ~/models/Qwen3-1.7B --scheme int8-row        # CUDA only
    labkit bench gptq --shape both                           # GPTQ vs round-to-nearest time (was bench-gptq)
    labkit bench matmul-error --shape 512 1024 512           # INT8 vs FP8 matmul error (was matmul-error)

Throughput mode times the float32 baseline and each quantized copy interleaved in one process
(``throughput.py``). On CPU at batch 1 decode runs the native runner (``native.py``: one C call per
token; ``--runner lean`` for the PyTorch loop); the one-time C build and weight packing happen
before the clock and are reported as ``build_s``. ``--roofline`` measures the read bandwidth in the
same run (``roofline.measure_bandwidth``, same thread count) and adds to every decode row the bytes
per token, the roofline tokens/s and the fraction reached, for both sides. ``--scaling-threads N``
repeats every decode measurement with N threads. ``--check-targets`` exits 1 if a target of
``targets.py`` is missed.

With ``--json`` one JSON object goes to stdout: for a single (scheme, phase) the row itself, for
several ``{"results": [...], "all_targets_met": ..., "setup_s": ...}``. Progress goes to stderr, and
the command ends with how long it took and how much of that was building/compiling.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from labkit.cli_common import add_model_options, resolve_runtime

from .timing import PHASES

DEFAULTS = dict(batch=1, prompt_len=128, gen_len=32, repeats=5, warmup=1)
MODES = ("kernels", "roofline", "nanovllm", "gptq", "matmul-error")


def _add_run_shape(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", default=None,
                        help="a scheme name (int8-row, fp8-group128, ...), a comma list, or 'all' (every weight-only "
                             "8-bit scheme); default int8-row (kernels: all)")
    parser.add_argument("--phase", choices=PHASES + ("both",), default="decode")
    parser.add_argument("--batch", type=int, default=DEFAULTS["batch"])
    parser.add_argument("--prompt-len", type=int, default=DEFAULTS["prompt_len"])
    parser.add_argument("--gen-len", type=int, default=DEFAULTS["gen_len"])
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_options(parser, include_lm_head=True)
    _add_run_shape(parser)
    parser.add_argument("--mode", choices=("real", "fake"), default="real")
    parser.add_argument("--warmup", type=int, default=DEFAULTS["warmup"])
    parser.add_argument("--runner", choices=("auto", "native", "lean", "hf"), default="auto",
                        help="auto: native on CPU at batch 1, else lean; native: one C call per decode step "
                             "(labkit.bench.native); lean: labkit's PyTorch loop; hf: the transformers forward")
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                        help="CPU prefill: torch.compile'd fused dequantization kernels (labkit.nn.fused; the first "
                             "call of each shape compiles, cached on disk)")
    parser.add_argument("--roofline", action="store_true",
                        help="measure the read bandwidth now and report each decode's fraction of its roofline")
    parser.add_argument("--scaling-threads", type=int, default=None, metavar="N",
                        help="repeat each decode measurement with N threads (targets: not slower than --threads)")
    parser.add_argument("--check-targets", action="store_true", help="exit 1 if a speed target is missed")
    # the modes of labkit bench before they were subcommands (kept so old commands keep working)
    parser.add_argument("--kernels", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("hf", "nanovllm"), default="hf", help=argparse.SUPPRESS)

    sub = parser.add_subparsers(dest="bench_mode", metavar="MODE")
    k = sub.add_parser("kernels", help="one quantized linear vs nn.Linear at Qwen3-1.7B's MLP shapes")
    _add_run_shape(k)
    k.add_argument("--threads", type=int, default=None)
    k.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True)
    r = sub.add_parser("roofline", help="the worked roofline numbers of two GPUs (spec sheets, no measurement)")
    r.add_argument("--json", action="store_true")
    n = sub.add_parser("nanovllm", help="a quantized nano-vllm engine vs its baseline (CUDA only)")
    add_model_options(n, include_lm_head=True)
    _add_run_shape(n)
    from . import gptq, matmul_error

    gptq.add_arguments(sub.add_parser("gptq", help="time full GPTQ against round-to-nearest on LLM-sized linears"))
    matmul_error.add_arguments(sub.add_parser("matmul-error", help="INT8 vs FP8 fake-quant matmul error"))


def resolve_schemes(text: str) -> list[str]:
    """``"all"`` → every 8-bit weight-only scheme; ``"a,b"`` → both; unknown names fail listing the known ones."""
    from labkit.schemes import WeightOnly, get_scheme, scheme_names

    if text == "all":
        return [n for n in scheme_names() if isinstance(get_scheme(n), WeightOnly)]
    names = [s.strip() for s in text.split(",") if s.strip()]
    for name in names:
        get_scheme(name)  # raises with the list of known schemes
    return names


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _phases(args: argparse.Namespace) -> list[str]:
    return list(PHASES) if args.phase == "both" else [args.phase]


def _runner(args: argparse.Namespace) -> str:
    if args.runner != "auto":
        return args.runner
    return "native" if args.device == "cpu" and args.batch == 1 else "lean"


def _fused(args: argparse.Namespace, phase: str):
    """The fused CPU kernels for prefill timings only (decode uses the native runner or eager kernels)."""
    from contextlib import nullcontext

    if args.device == "cpu" and args.fused and phase == "prefill":
        from labkit.nn import fused

        return fused.enabled()
    return nullcontext()


def _measure(args: argparse.Namespace, clock: dict) -> list[dict]:
    from labkit.models import load_model
    from labkit.nn import quantize_model
    from labkit.schemes import WeightOnly, get_scheme

    from .decode import decode_bytes, roofline_fields
    from .targets import target_for
    from .throughput import Environment, matmul_weight_bytes, model_bytes, random_prompt, time_pair

    schemes = resolve_schemes(args.scheme or "int8-row")
    runner = _runner(args)
    dtype = getattr(torch, args.dtype)
    _say(f"loading {args.model} ({args.dtype}, {args.device}) ...")
    baseline, _ = load_model(args.model, dtype=dtype, device=args.device)
    ids = random_prompt(baseline.config.vocab_size, args.batch, args.prompt_len, args.seed, args.device)
    base_bytes, base_mm = model_bytes(baseline), matmul_weight_bytes(baseline)
    threads = [torch.get_num_threads()] + ([args.scaling_threads] if args.scaling_threads else [])
    bandwidth: dict[int, float] = {}
    if args.roofline and "decode" in _phases(args):
        from .roofline import measure_bandwidth

        for n in threads:
            bw = measure_bandwidth(threads=n)
            bandwidth[n] = bw.gb_s
            _say(f"read bandwidth, {n} thread(s): {bw.gb_s:.1f} GB/s ({bw.nbytes >> 20} MiB probe, best of {bw.repeats})")
    results = []
    for name in schemes:
        scheme = get_scheme(name)
        quantized = quantize_model(baseline, scheme, args.mode, include_lm_head=args.include_lm_head).model
        for phase in _phases(args):
            for n in threads if phase == "decode" else threads[:1]:
                torch.set_num_threads(n)
                env_before = Environment.capture(args.device)
                _say(f"{name} {args.mode} {phase} ({n} thread{'s' if n > 1 else ''}, runner {runner}): "
                     f"{args.warmup} warm-up + {args.repeats} interleaved repeats ...")
                start = time.perf_counter()
                with _fused(args, phase):
                    t = time_pair(baseline, quantized, phase, ids, args.gen_len, args.repeats, args.warmup, runner)
                timed = sum(t.seconds) + sum(t.baseline_seconds)
                clock["setup_s"] += max(0.0, time.perf_counter() - start - timed)
                fmt = getattr(scheme, "fmt", "")
                # the lab's targets are for weight-only schemes (W8A8 has no fast CPU kernel to meet them)
                target = target_for(name, fmt, phase, args.mode) if isinstance(scheme, WeightOnly) else None
                row = {
                    "model": args.model, "scheme": name, "mode": args.mode, **t.as_dict(),
                    "device": args.device, "dtype": args.dtype, "runner": runner,
                    "kernels": "fused" if args.device == "cpu" and args.fused and phase == "prefill" else "eager",
                    "include_lm_head": args.include_lm_head, "repeats": args.repeats, "warmup": args.warmup,
                    "weight_bytes": model_bytes(quantized), "baseline_weight_bytes": base_bytes,
                    "matmul_weight_bytes": matmul_weight_bytes(quantized), "baseline_matmul_weight_bytes": base_mm,
                    "torch_threads": n, "torch_version": env_before.torch_version,
                    "cpu": env_before.cpu, "load_avg_before": env_before.load_avg_1min,
                    "load_avg_after": Environment.capture(args.device).load_avg_1min,
                    "target": None if target is None else target.min_speedup,
                    "target_met": None if target is None else t.speedup >= target.min_speedup,
                }
                if phase == "decode" and n in bandwidth:
                    row["bandwidth_gb_s"] = bandwidth[n]
                    row.update(roofline_fields(t.tokens_per_s, decode_bytes(quantized, args.prompt_len, args.gen_len,
                                                                            runner), bandwidth[n]))
                    row.update(roofline_fields(t.baseline_tokens_per_s, decode_bytes(
                        baseline, args.prompt_len, args.gen_len, runner), bandwidth[n], prefix="baseline_"))
                roof = f", {row['roofline_fraction']:.0%} of roofline" if "roofline_fraction" in row else ""
                _say(f"  {row['tokens_per_s']:.1f} tok/s vs {row['baseline_tokens_per_s']:.1f} baseline: "
                     f"{row['speedup']:.2f}x{roof}" + ("" if target is None else f" (target {target.min_speedup}x)"))
                results.append(row)
        quantized._labkit_native_decoder = None
        del quantized
    baseline._labkit_native_decoder = None
    return results


def extra_target_misses(rows: list[dict]) -> list[str]:
    """Targets across rows: roofline fractions (``targets.MIN_ROOFLINE_FRACTION``) and thread scaling."""
    from .targets import MIN_ROOFLINE_FRACTION, ROOFLINE_SCHEMES

    misses = []
    decode = [r for r in rows if r["phase"] == "decode" and r.get("mode", "real") == "real"]
    if decode and "roofline_fraction" in decode[0]:
        first = min(r["torch_threads"] for r in decode)
        for r in (r for r in decode if r["torch_threads"] == first):
            checks = [("none", r["baseline_roofline_fraction"])] + [(r["scheme"], r["roofline_fraction"])]
            for scheme, frac in checks:
                if scheme in ROOFLINE_SCHEMES and frac < MIN_ROOFLINE_FRACTION:
                    misses.append(f"{scheme} decode at {frac:.0%} of its roofline < {MIN_ROOFLINE_FRACTION:.0%}")
    by_scheme: dict[str, dict[int, float]] = {}
    for r in decode:
        by_scheme.setdefault(r["scheme"], {})[r["torch_threads"]] = r["tokens_per_s"]
        by_scheme.setdefault("none", {}).setdefault(r["torch_threads"], r["baseline_tokens_per_s"])
    for scheme, per_threads in by_scheme.items():
        counts = sorted(per_threads)
        for a, b in zip(counts, counts[1:]):
            if per_threads[b] < per_threads[a]:
                misses.append(f"{scheme} decode slower with {b} threads ({per_threads[b]:.1f} tok/s) than with {a} "
                              f"({per_threads[a]:.1f})")
    return list(dict.fromkeys(misses))


def _print_table(rows: list[dict]) -> None:
    roof = any("roofline_fraction" in r for r in rows)
    head = f"{'scheme':14} {'phase':8} {'thr':>3} {'tok/s':>8} {'base tok/s':>10} {'speedup':>8} {'target':>7}"
    print(head + ("  roofline: quant / base" if roof else "") + "  MB (mm weights)")
    for r in rows:
        tgt = "" if r["target"] is None else f"{r['target']:.1f}{'✓' if r['target_met'] else '✗'}"
        line = (f"{r['scheme']:14} {r['phase']:8} {r['torch_threads']:3} {r['tokens_per_s']:8.1f} "
                f"{r['baseline_tokens_per_s']:10.1f} {r['speedup']:7.2f}x {tgt:>7}")
        if roof:
            line += (f"  {r['roofline_fraction']:5.0%} of {r['roofline_tokens_per_s']:6.1f} / "
                     f"{r['baseline_roofline_fraction']:4.0%} of {r['baseline_roofline_tokens_per_s']:5.1f}"
                     if "roofline_fraction" in r else " " * 36)
        print(line + f"  {r['matmul_weight_bytes'] / 1e6:.0f} vs {r['baseline_matmul_weight_bytes'] / 1e6:.0f}")
    if rows:
        r = rows[0]
        bw = sorted({(x["torch_threads"], round(x["bandwidth_gb_s"], 1)) for x in rows if "bandwidth_gb_s" in x})
        runner = next((x["runner"] for x in rows if x["phase"] == "decode"), r["runner"])
        print(f"device {r['device']} ({r['cpu']}), decode runner {runner}, batch {r['batch']}, prompt "
              f"{r['prompt_len']}, gen {r['gen_len']}, {r['repeats']} repeats, load avg {r['load_avg_before']:.1f}→"
              f"{rows[-1]['load_avg_after']:.1f}" + (f"; read bandwidth (threads, GB/s) {bw}" if bw else ""))


def _spec_rooflines() -> dict:
    from .roofline import HARDWARE, roofline

    out = {}
    for label, params in (("smollm2-135m", 134_479_872), ("qwen3-1.7b", 1_720_451_072)):
        for hw in HARDWARE.values():
            for phase, tokens in (("decode", 1), ("prefill", 1024)):
                for wbytes, math in ((2, "bf16"), (1, "int8"), (1, "fp8")):
                    key = f"{label}/{hw.name}/{phase}/{wbytes}B-weights/{math}-math"
                    out[key] = roofline(params, tokens, wbytes, hw.tflops[math], hw.bandwidth_gb_s).as_dict()
    return out


def _run_roofline(args: argparse.Namespace) -> int:
    rows = _spec_rooflines()
    if args.json:
        print(json.dumps(rows))
        return 0
    for k, r in rows.items():
        print(f"{k:60} {r['bound']:7} compute {r['compute_s'] * 1e3:8.3f} ms  memory {r['memory_s'] * 1e3:8.3f} ms")
    return 0


def _run_kernels(args: argparse.Namespace) -> int:
    from .kernels import as_dicts, bench_kernels, machine_peaks

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    schemes = resolve_schemes(args.scheme or "all")
    peaks = machine_peaks()
    if args.fused:
        from labkit.nn import fused

        with fused.enabled():
            rows = as_dicts(bench_kernels(schemes, repeats=args.repeats))
    else:
        rows = as_dicts(bench_kernels(schemes, repeats=args.repeats))
    if args.json:
        print(json.dumps({"machine": peaks, "torch_threads": torch.get_num_threads(), "fused": args.fused,
                          "kernels": rows}))
        return 0
    print(f"machine: {peaks['stream_gb_s']:.1f} GB/s read, {peaks['fp32_gflops']:.0f} GFLOP/s fp32 GEMM")
    for r in rows:
        print(f"{r['scheme']:14} {r['in_features']:5}->{r['out_features']:<5} M={r['tokens']:<4} "
              f"{r['seconds'] * 1e6:9.0f} us vs {r['baseline_seconds'] * 1e6:9.0f} us  "
              f"{r['speedup']:5.2f}x  {r['weight_gb_s']:6.1f} GB/s")
    return 0


def _report(rows: list[dict], args: argparse.Namespace, clock: dict) -> int:
    missed = [f"{r['scheme']} {r['phase']} ({r['torch_threads']} threads) {r['speedup']:.2f}x < {r['target']}x"
              for r in rows if r.get("target_met") is False]
    missed += extra_target_misses(rows) if args.check_targets else []
    if args.json:
        if len(rows) == 1 and not args.check_targets:
            print(json.dumps(rows[0]))
        else:
            print(json.dumps({"results": rows, "all_targets_met": not missed, "missed": missed,
                              "setup_s": clock["setup_s"]}))
    else:
        _print_table(rows)
    if args.check_targets and missed:
        for m in missed:
            print(f"target missed: {m}", file=sys.stderr)
        return 1
    return 0


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    mode = args.bench_mode or ("kernels" if args.kernels else "nanovllm" if args.engine == "nanovllm" else None)
    if mode == "roofline":
        return _run_roofline(args)
    if mode == "kernels":
        return _run_kernels(args)
    if mode == "gptq":
        from . import gptq

        return gptq.run(args)
    if mode == "matmul-error":
        from . import matmul_error

        return matmul_error.run(args)
    resolve_runtime(args)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if torch.get_num_threads() > 1 and load > cores:
        # multi-threaded kernels wait at every barrier for a thread that lost its core
        _say(f"labkit bench: load average {load:.1f} on {cores} cores — {torch.get_num_threads()} threads will keep "
             "waiting for each other at every barrier; use --threads 1 for meaningful ratios")
    clock = {"setup_s": 0.0}
    if mode == "nanovllm":
        from .nanovllm import bench_nanovllm

        rows = bench_nanovllm(args.model, resolve_schemes(args.scheme or "int8-row"), _phases(args),
                              batch=args.batch, prompt_len=args.prompt_len, gen_len=args.gen_len,
                              repeats=args.repeats, include_lm_head=args.include_lm_head, seed=args.seed)
    else:
        rows = _measure(args, clock)
    code = _report(rows, args, clock)
    total = time.perf_counter() - started
    _say(f"labkit bench: {total:.0f} s in all, of which {clock['setup_s']:.0f} s building, packing, compiling and "
         "warming up (never counted in tokens/s); compiled code is cached for the next run")
    return code

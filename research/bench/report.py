"""From the jobs' raw results to the report: per-method figures, paired ratios, targets, markdown.

A ratio pairs each run of ours with the baseline run next to it in time (same repeat), so a noisy
moment on a shared machine slows both sides of a pair; the reported ratio is the median over pairs.
Ratios are given on the wall clock and on process CPU time; targets are judged on CPU time on a CPU
(where other processes' load lands on the wall clock only) and on the wall clock on a GPU. Every run
starts from the same weights: its loss curve is compared step by step with ours (largest relative gap)."""

from __future__ import annotations

import math
import statistics
from typing import Any

# (target name, what must hold, threshold)
TARGETS = {
    "ours_vs_manual": 1.2,  # our training tokens/s over the hand-written loop's, per method, at least
    "ours_vs_hf": 1.2,  # over the Hugging Face Trainer's, at least
    "loss_curve_gap": 0.01,  # largest relative gap between our loss curve and a baseline's, at most
    "generation_speedup": 4.0,  # batched over per-example generation, at least (batch 16, same outputs)
    "evaluation_vs_loop": 1.0,  # our evaluation over a plain batched generate loop, at least (same outputs)
    "padded_pct_grouped": 10.0,  # padded share of processed tokens with length grouping, at most (DialogSum)
    "lora_vs_full_peak_memory": 0.5,  # at most (SmolLM2-135M)
    "qlora_base_vs_float32": 0.35,  # at most
    "startup_s": 5.0,  # `--help` and a config error answer within, at most (best of 3, fresh processes)
}


def summary(values: list[float]) -> dict[str, float]:
    """Median and spread: the interquartile range is robust to the odd slow step of a shared machine."""
    q1, _, q3 = statistics.quantiles(values, n=4) if len(values) > 1 else (values[0],) * 3
    return {
        "median": statistics.median(values),
        "iqr": q3 - q1,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def method_summary(raw: dict[str, Any]) -> dict[str, Any]:
    by_runner: dict[str, dict[int, dict]] = {}
    for seg in raw["segments"]:
        by_runner.setdefault(seg["runner"], {})[seg["repeat"]] = seg
    ours = by_runner.pop("ours")
    ceiling = raw["matmul_ceiling"]
    out = {
        "params": raw["params"],
        "tokens_per_s": statistics.median(s["tokens_per_s"] for s in ours.values()),
        "tokens_per_cpu_s": statistics.median(s["tokens_per_cpu_s"] for s in ours.values()),
        "step_s": summary([t for s in ours.values() for t in s["step_s"]]),
        "startup_s": statistics.median(s["startup_s"] for s in ours.values()),
        "memory": raw["memory"],
        "mfu": raw.get("mfu"),
        "ceiling_fraction": _ceiling_fraction(ours.values(), ceiling),
        "generation_tokens_per_s": raw["generation"]["tokens_per_s"],
        "baselines": {},
    }
    for name, runs in by_runner.items():
        ratios = {k: [ours[r][k] / runs[r][k] for r in sorted(runs)] for k in ("tokens_per_s", "tokens_per_cpu_s")}
        out["baselines"][name] = {
            "tokens_per_s": statistics.median(s["tokens_per_s"] for s in runs.values()),
            "tokens_per_cpu_s": statistics.median(s["tokens_per_cpu_s"] for s in runs.values()),
            "step_s": summary([t for s in runs.values() for t in s["step_s"]]),
            "startup_s": statistics.median(s["startup_s"] for s in runs.values()),
            "ratio": statistics.median(ratios["tokens_per_s"]),
            "ratios": ratios["tokens_per_s"],
            "cpu_ratio": statistics.median(ratios["tokens_per_cpu_s"]),
            "cpu_ratios": ratios["tokens_per_cpu_s"],
            "ceiling_fraction": _ceiling_fraction(runs.values(), ceiling),
            "loss_gap": max(_loss_gap(ours[r]["losses"], runs[r]["losses"]) for r in runs),
        }
    return out


def _ceiling_fraction(segments: Any, ceiling: dict[str, float]) -> dict[str, float]:
    """Model FLOPs per second over the float32 matmul ceiling, median over runs, per clock."""
    segments = list(segments)
    return {
        "cpu": statistics.median(s["flops"] / sum(s["step_cpu_s"]) for s in segments) / ceiling["flop_per_cpu_s"],
        "wall": statistics.median(s["flops"] / sum(s["step_s"]) for s in segments) / ceiling["flop_per_s"],
    }


def _loss_gap(ours: list[float], baseline: list[float]) -> float:
    """Largest relative difference between two loss curves, step by step."""
    if len(ours) != len(baseline):
        return math.inf
    return max(abs(a - b) / abs(b) for a, b in zip(ours, baseline, strict=True))


def targets(
    methods: dict[str, Any],
    gen: dict | None,
    pad: dict | None,
    clock: str,
    evaluation: dict | None = None,
    startup: dict | None = None,
) -> list[dict[str, Any]]:
    """`clock`: `cpu` or `wall`, the ratio the throughput targets are judged on."""
    rows = []
    ratio = "cpu_ratio" if clock == "cpu" else "ratio"
    for name, m in methods.items():
        for base, key in (("manual", "ours_vs_manual"), ("hf", "ours_vs_hf")):
            if base in m.get("baselines", {}):
                value = m["baselines"][base][ratio]
                rows.append(_check(f"{key} ({name}, {clock} clock)", value, TARGETS[key], at_least=True))
                gap = m["baselines"][base]["loss_gap"]
                rows.append(_check(f"loss_curve_gap ({name} vs {base})", gap, TARGETS["loss_curve_gap"]))
    if gen:
        row = _check("generation_speedup", gen["speedup"], TARGETS["generation_speedup"], at_least=True)
        row["met"] = row["met"] and gen["outputs_equal_all"]
        rows.append(row)
    if evaluation:
        value = evaluation["cpu_speedup" if clock == "cpu" else "speedup"]
        row = _check(f"evaluation_vs_loop ({clock} clock)", value, TARGETS["evaluation_vs_loop"], at_least=True)
        row["met"] = row["met"] and evaluation["outputs_equal_all"]
        rows.append(row)
    if pad:
        rows.append(_check("padded_pct_grouped", pad["grouped"]["padded_pct"], TARGETS["padded_pct_grouped"]))
    if "lora" in methods and "full" in methods:
        lora, full = (methods[k]["memory"].get("train_peak_rss_mb") for k in ("lora", "full"))
        if lora and full:
            rows.append(_check("lora_vs_full_peak_memory", lora / full, TARGETS["lora_vs_full_peak_memory"]))
    if "qlora" in methods:
        mem = methods["qlora"]["memory"]
        ratio = mem["model_mb"] / mem["model_mb_float32"]
        rows.append(_check("qlora_base_vs_float32", ratio, TARGETS["qlora_base_vs_float32"]))
    for name, seconds in (startup or {}).get("seconds", {}).items():
        rows.append(_check(f"startup_s ({name})", seconds, TARGETS["startup_s"]))
    return rows


def _check(name: str, value: float, threshold: float, at_least: bool = False) -> dict[str, Any]:
    met = math.isfinite(value) and (value >= threshold if at_least else value <= threshold)
    return {"target": name, "value": value, "threshold": f"{'>=' if at_least else '<='} {threshold}", "met": met}


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Command: `{meta['command']}`  ",
        f"Model `{meta['model']}`, data `{meta['data']}`, batch {meta['batch_size']}, "
        f"{meta['warmup']} warm-up + {meta['steps']} timed steps x {meta['repeats']} interleaved repeats, "
        f"{meta['threads']} threads, {meta['device']}, torch {meta['torch']}.",
        "",
        "Ratios: ours / baseline tokens/s, median over interleaved pairs (each pair in brackets), "
        "on process CPU time and on the wall clock.",
        "",
        "| method | trainable | train tok/s (wall) | step ms median (IQR) | x hand-written: cpu; wall "
        "| x HF Trainer: cpu; wall | loss gap: hand-written; HF | matmul ceiling: ours; hand-written; HF "
        "| peak memory MB (train) | weights MB | gen tok/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        if "error" in m:
            lines.append(f"| {name} | failed: {m['error'][:80]} |||||||||")
            continue
        base = m["baselines"]
        ratio = {
            k: f"{_ratios(base[k], 'cpu_')}; {_ratios(base[k], '')}" if k in base else "-" for k in ("manual", "hf")
        }
        gaps = "; ".join(f"{base[k]['loss_gap']:.1e}" if k in base else "-" for k in ("manual", "hf"))
        clock = "cpu" if meta["device"].startswith("CPU") else "wall"
        fractions = [m, *(base[k] for k in ("manual", "hf") if k in base)]
        ceiling = "; ".join(f"{100 * f['ceiling_fraction'][clock]:.1f}%" for f in fractions)
        mem = m["memory"]
        peak = mem.get("train_peak_gpu_allocated_mb", mem.get("train_peak_rss_mb", float("nan")))
        lines.append(
            f"| {name} | {m['params']['trainable_pct']:.2f}% | {m['tokens_per_s']:,.0f} "
            f"| {1e3 * m['step_s']['median']:.1f} ({1e3 * m['step_s']['iqr']:.1f}) | {ratio['manual']} | {ratio['hf']} "
            f"| {gaps} | {ceiling} | {peak:,.0f} | {mem['model_mb']:,.1f} | {m['generation_tokens_per_s']:,.0f} |"
        )
    if (gen := report.get("generation")) and "error" not in gen:
        lines += ["", f"Generation ({gen['rows']} rows, up to {gen['max_new_tokens']} new tokens, greedy): "
                  f"batched {gen['batched_s']:.2f} s, per-example loop {gen['loop_s']:.2f} s, "
                  f"speedup {gen['speedup']:.1f}x, identical outputs {gen['outputs_equal']}/{gen['rows']}."]  # fmt: skip
    if (ev := report.get("evaluation")) and "error" not in ev:
        lines += ["", f"Evaluation ({ev['rows']} test examples, batch {ev['batch_size']}, "
                  f"up to {ev['generation'].get('max_new_tokens')} new tokens): ours (trainer.test: loss, generation, "
                  f"metrics) {ev['ours_cpu_s']:.1f} s CPU, {ev['ours_s']:.1f} s wall; plain batched generate loop "
                  f"{ev['loop_cpu_s']:.1f} s CPU, {ev['loop_s']:.1f} s wall; speedup {ev['cpu_speedup']:.2f}x CPU "
                  f"({', '.join(f'{r:.2f}' for r in ev['cpu_speedups'])}), {ev['speedup']:.2f}x wall; "
                  f"identical outputs {ev['outputs_equal']}/{ev['rows']}."]  # fmt: skip
    if ceiling := report.get("matmul_ceiling"):
        lines += ["", f"Float32 matmul ceiling ({ceiling['size']}x{ceiling['size']}, {meta['threads']} threads): "
                  f"{ceiling['flop_per_cpu_s'] / 1e9:.1f} GFLOP per CPU second, {ceiling['flop_per_s'] / 1e9:.1f} "
                  "GFLOP/s wall; the table's ceiling column is the model FLOPs the timed steps needed "
                  "(research/bench/resources.py) per second over it."]  # fmt: skip
    if pad := report.get("padding"):
        lines += ["", f"Padding ({pad['data']}, {pad['examples']} training examples, batch {pad['batch_size']}, "
                  f"inputs cut at {pad['max_source_length']} tokens): "
                  f"{pad['random']['padded_pct']:.1f}% of processed tokens are padding in random batches, "
                  f"{pad['grouped']['padded_pct']:.1f}% with length grouping."]  # fmt: skip
    if (start := report.get("startup")) and "error" not in start:
        lines += ["", "Startup (best of {}, fresh processes, no model loaded): {}.".format(
            start["repeats"], ", ".join(f"`{name}` {s:.2f} s" for name, s in start["seconds"].items()))]  # fmt: skip
    lines += ["", "| target | value | needed | met |", "|---|---|---|---|"]
    lines += [
        f"| {t['target']} | {t['value']:.3g} | {t['threshold']} | {'yes' if t['met'] else 'no'} |"
        for t in report["targets"]
    ]
    return "\n".join(lines) + "\n"


def _ratios(baseline: dict[str, Any], prefix: str) -> str:
    pairs = ", ".join(f"{r:.2f}" for r in baseline[f"{prefix}ratios"])
    return f"{baseline[f'{prefix}ratio']:.2f} ({pairs})"

"""Compute used against compute available: model FLOPs utilisation on an accelerator (against its
nominal bf16 peak), and on any device the fraction of the float32 matmul ceiling measured here, at
this process's thread count (memory: `research.runs.memory`)."""

from __future__ import annotations

import time
from collections.abc import Mapping

import torch
from peft import PeftModel
from torch import nn

# Dense bf16 peak TFLOP/s by device name, used for MFU when --peak-tflops is not given.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}
CEILING_SIZE = 2048  # square float32 matmul: large enough to run at the BLAS kernel's best rate


def mfu(params: float, tokens_per_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation with the usual 6 * parameters * tokens per training step (forward 2,
    backward 4): an approximation that ignores attention FLOPs and counts the backward of frozen weights."""
    if not torch.cuda.is_available():
        return None
    if peak_tflops is None:
        name = torch.cuda.get_device_name()
        peak_tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return None if peak_tflops is None else 6 * params * tokens_per_s / (peak_tflops * 1e12)


def matmul_ceiling(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """FLOP/s of a large float32 matmul, per wall second and per process CPU second (the best of
    `repeats`): what the model's matmuls could reach on this machine with this many threads."""
    a, b = (torch.randn(CEILING_SIZE, CEILING_SIZE, device=device) for _ in range(2))
    flops = 2 * CEILING_SIZE**3
    a @ b  # warm-up: thread pool, BLAS buffers
    wall, cpu = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"flop_per_s": flops / min(wall), "flop_per_cpu_s": flops / min(cpu), "size": CEILING_SIZE}


def train_flops(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> float | None:
    """Matmul FLOPs one training step of a decoder-only LM needs on this batch's real tokens: the
    linear layers at every real token, the attention scores and their weighted sum over the causal
    context, the LM head only where the loss has a label (2 FLOPs per multiply-add). Backward: the
    activation gradients cost the forward again (attention: twice its forward), and each trainable
    weight its gradient once more (full fine-tuning: every layer; LoRA: its small factors, left out).
    Padding and the prompt's logits are not needed work. None for other architectures."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    config, head = base.config, base.get_output_embeddings()
    if config.is_encoder_decoder or head is None:
        return None
    layers = [m for n, m in base.get_decoder().named_modules() if isinstance(m, nn.Linear) and "lora_" not in n]
    linear = sum(m.weight.numel() for m in layers)
    trained = sum(m.weight.numel() for m in layers if m.weight.requires_grad)
    lengths = batch["attention_mask"].sum(1).double()
    real, labelled = float(lengths.sum()), float((batch["labels"][:, 1:] != -100).sum())
    width = config.num_attention_heads * getattr(config, "head_dim", config.hidden_size // config.num_attention_heads)
    attention = config.num_hidden_layers * 2 * 2 * width * float((lengths * (lengths + 1) / 2).sum())
    head_flops = 2 * head.weight.numel() * labelled
    forward = 2 * linear * real + head_flops + attention
    weight_grads = 2 * trained * real + (head_flops if head.weight.requires_grad else 0)
    return 2 * forward + attention + weight_grads

"""Backbone throughput: images/s of forward (eval) and forward+backward (train).

    python perf/backbone_speed.py                          # CPU: tiny + ViT-S/8
    python perf/backbone_speed.py --device cuda --compile  # GPU, eager and compiled

For ViT-S/8 at 224 px the achieved FLOP/s is computed from the analytic count
(12 blocks x 786 tokens: 24*D^2 + 4*N*D FLOPs per token and block, plus the patch
projection; backward = 2 x forward) and, on a GPU, divided by the peak bf16 dense rate
(`--peak-tflops`, default 989 for an H100 SXM).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch

from sbirbench.backbones.vit_tokens import VitTokens, VitTokensConfig, VitTokensTiny


def vit_flops(img: int, patch: int, dim: int, depth: int, tokens: int) -> float:
    """Forward FLOPs of one image through a ViT with ``tokens`` extra tokens."""
    n = (img // patch) ** 2 + tokens
    per_token = depth * (24 * dim * dim + 4 * n * dim)
    embed = (img // patch) ** 2 * 3 * patch * patch * dim * 2
    return n * per_token + embed


def build(name: str, compile_model: bool, device: torch.device) -> tuple[torch.nn.Module, float]:
    if name == "vit_s8":
        model = VitTokens(VitTokensConfig(model="vit_small_patch8_224", compile=compile_model))
        flops = vit_flops(224, 8, 384, 12, 2)
    else:
        model = VitTokensTiny(VitTokensTiny.Config(compile=compile_model))
        flops = vit_flops(64, 8, 128, 4, 2)
    return model.to(device), flops


def measure(model, batch, device, precision, train, iters, warmup) -> float:
    size = model.input_size
    images = torch.rand(batch, 3, size, size, device=device)
    dtype = torch.bfloat16 if precision == "bf16" else None
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    model.train(train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4) if train else None

    def step():
        with autocast, contextlib.nullcontext() if train else torch.inference_mode():
            out = model(images)[model.default_feature]
        if train:
            out.float().pow(2).mean().backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * iters / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="tiny,vit_s8")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--batch", type=int, default=0, help="0: 64 on GPU, 8 (ViT-S/8) or 64 on CPU"
    )
    parser.add_argument("--iters", type=int, default=0, help="0: 20 on GPU, 3 on CPU")
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rows = []
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}; torch {torch.__version__}")
    header = f"{'model':8} {'mode':6} {'prec':5} {'compiled':8} {'batch':>5} {'img/s':>9}"
    print(header + f" {'TFLOP/s':>8}" + ("  % of peak" if gpu else ""))
    for model_name in args.models.split(","):
        for compiled in [False, True] if args.compile else [False]:
            model, flops = build(model_name, compiled, device)
            batch = args.batch or (64 if gpu or model_name == "tiny" else 8)
            iters = args.iters or (20 if gpu else 3)
            for train in (False, True):
                for precision in args.precisions.split(","):
                    rate = measure(
                        model,
                        batch,
                        device,
                        precision,
                        train,
                        iters,
                        warmup=3 if compiled or gpu else 1,
                    )
                    tflops = rate * flops * (3 if train else 1) / 1e12
                    peak = f"  {100 * tflops / args.peak_tflops:8.1f}%" if gpu else ""
                    rows.append(
                        {
                            "model": model_name,
                            "mode": "train" if train else "eval",
                            "precision": precision,
                            "compiled": compiled,
                            "batch": batch,
                            "images_per_second": rate,
                            "tflops": tflops,
                            "peak_fraction": tflops / args.peak_tflops if gpu else None,
                        }
                    )
                    print(
                        f"{model_name:8} {'train' if train else 'eval':6} {precision:5} "
                        f"{compiled!s:8} {batch:5d} {rate:9.1f} {tflops:8.3f}{peak}",
                        flush=True,
                    )

    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"device": name, "peak_tflops": args.peak_tflops, "rows": rows}, handle, indent=2
            )


if __name__ == "__main__":
    main()

"""Benchmark image generation.

1. diffusers: N images with the tiny random-weight pipeline of the tests, loaded ONCE and reused
   (what the backend does) versus a fresh load for every image (what a naive loop does);
   prints the ratio (target >= 3x).
2. diffusers batching: N same-size images in pipeline calls of --batch-size (a list of prompts,
   one torch.Generator per image) versus one image per call, on the same loaded pipeline;
   prints the ratio (on a CPU batching gains little; on a GPU it is the point).
3. placeholder: images per second at the real table sizes, PNG files written.

    python benchmarks/generate.py [--n 6] [--size 64x64] [--steps 2] [--threads 1]
                                  [--batch-size 4] [--device cpu] [--placeholder 60]

Runs offline (no downloads); exits 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stage5cli.images import SIZES, ImageRequest, get_backend  # noqa: E402
from stage5cli.images.png import a1111_parameters, write_png  # noqa: E402


def request(i: int, asset_type: str, width: int, height: int, steps: int) -> ImageRequest:
    return ImageRequest(
        key=str(i),
        asset_id=i,
        asset_name=f"Asset number {i}",
        asset_type=asset_type,
        description="A weathered brass pocket watch, engraved, stopped at 4:17, on a desk.",
        prompt=f"film noir still, asset {i}, a weathered brass pocket watch",
        negative_prompt="blurry, lowres",
        width=width,
        height=height,
        seed=1000 + i,
        steps=steps,
        guidance=5.0,
        sampler="euler",
        palette=["#1b263b", "#415a77", "#778da9", "#e0e1dd", "#c9a227"],
        style_id="noir",
        style_name="Neo-noir",
        style_sha256="ab" * 32,
    )


def bench_diffusers(n: int, width: int, height: int, steps: int, threads: int) -> float | None:
    try:
        import diffusers  # noqa: F401
        import torch
    except ImportError:
        print("diffusers: skipped (pip install 'stage5[diffusers]')")
        return None
    if threads > 0:
        # On a small shared CPU torch's default threads oversubscribe it and the timings turn
        # to noise (measured 10x slower steps); one thread gives stable numbers.
        torch.set_num_threads(threads)
    from tests.tiny_pipeline import save_tiny_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        model = str(save_tiny_pipeline(Path(tmp) / "tiny-sd"))
        reqs = [request(i, "prop", width, height, steps) for i in range(n)]

        warm = get_backend("diffusers", model=model)  # imports, first-call kernels: not timed
        list(warm.generate(reqs[:1]))
        warm.close()

        t0 = time.perf_counter()
        backend = get_backend("diffusers", model=model)
        backend.ensure_ready()
        load_s = time.perf_counter() - t0
        shared = list(backend.generate(reqs))
        one_load = time.perf_counter() - t0
        loads = backend.load_count
        backend.close()

        t0 = time.perf_counter()
        separate = []
        for req in reqs:
            b = get_backend("diffusers", model=model)
            separate.extend(b.generate([req]))
            b.close()
        per_image = time.perf_counter() - t0

    assert all(r.ok for r in shared + separate), [r.error for r in shared + separate if not r.ok]
    same = all(
        a.image.tobytes() == b.image.tobytes() for a, b in zip(shared, separate, strict=True)
    )
    ratio = per_image / one_load
    print(
        f"diffusers tiny pipeline: {n} images {width}x{height}, {steps} steps, device {shared[0].info['device']}"
    )
    print(f"  one load, reused ({loads} load):  {one_load:7.2f} s  ({n / one_load:.2f} images/s)")
    print(f"  a load per image ({n} loads):   {per_image:7.2f} s  ({n / per_image:.2f} images/s)")
    print(f"  one load: {load_s:.2f} s; generation: {(one_load - load_s) / n:.3f} s/image")
    print(f"  same pixels either way: {'yes' if same else 'NO'}")
    target = "meets" if ratio >= 3 else "BELOW"
    print(f"diffusers one-load vs load-per-image: {ratio:.1f}x ({target} the 3x target)")
    return ratio


def bench_batching(n: int, width: int, height: int, steps: int, threads: int, batch: int,
                   device: str | None) -> float | None:
    try:
        import diffusers  # noqa: F401
        import torch
    except ImportError:
        print("diffusers batching: skipped (pip install 'stage5[diffusers]')")
        return None
    if threads > 0:
        torch.set_num_threads(threads)
    from tests.tiny_pipeline import save_tiny_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        model = str(save_tiny_pipeline(Path(tmp) / "tiny-sd"))
        reqs = [request(i, "prop", width, height, steps) for i in range(n)]
        timings = {}
        results = {}
        for size in (1, batch):
            backend = get_backend("diffusers", model=model, batch_size=size, device=device)
            backend.ensure_ready()
            list(backend.generate(reqs[:size]))  # first-call kernels: not timed
            t0 = time.perf_counter()
            results[size] = list(backend.generate(reqs))
            timings[size] = time.perf_counter() - t0
            where = backend.device
            backend.close()
    assert all(r.ok for rs in results.values() for r in rs)
    ratio = timings[1] / timings[batch]
    print(f"diffusers batching: {n} images {width}x{height}, {steps} steps, device {where}")
    print(f"  one image per call:          {timings[1]:7.2f} s  ({n / timings[1]:.2f} images/s)")
    print(f"  --batch-size {batch} ({-(-n // batch)} calls): {timings[batch]:7.2f} s  "
          f"({n / timings[batch]:.2f} images/s)")
    print(f"diffusers batch-size {batch} vs one image per call: {ratio:.2f}x")
    return ratio


def bench_placeholder(count: int) -> float:
    backend = get_backend("placeholder")
    types = list(SIZES)
    reqs = [request(i, types[i % 3], *SIZES[types[i % 3]], steps=20) for i in range(count)]
    list(backend.generate(reqs[:3]))  # font loading: not timed
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for req, result in zip(reqs, backend.generate(reqs), strict=True):
            write_png(
                result.image,
                Path(tmp) / f"{req.asset_id}.png",
                parameters=a1111_parameters(req, backend.model_name()),
                stage5={"asset_id": req.asset_id, "style_id": req.style_id},
            )
        elapsed = time.perf_counter() - t0
    rate = count / elapsed
    print(
        f"placeholder: {rate:.1f} images/s ({count} images at the table sizes, PNG files written)"
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6, help="diffusers images (default 6)")
    parser.add_argument("--size", default="64x64", help="diffusers image size (default 64x64)")
    parser.add_argument("--steps", type=int, default=2, help="diffusers steps (default 2)")
    parser.add_argument("--placeholder", type=int, default=60, help="placeholder images")
    parser.add_argument("--batch-size", type=int, default=4, help="images per call (default 4)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    bench_diffusers(args.n, width, height, args.steps, args.threads)
    bench_batching(max(args.n, args.batch_size * 2), width, height, args.steps, args.threads,
                   args.batch_size, args.device)
    bench_placeholder(args.placeholder)
    return 0


if __name__ == "__main__":
    sys.exit(main())

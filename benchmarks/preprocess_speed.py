"""Pictures per second of `oneword preprocess`, one process per core against a single-process loop, same run.

Generates large JPEGs (photo-like: smooth gradients, shapes and noise) in a temporary folder, then prepares them
with the focal crop at 512 px, first with `--workers 1` (the reference: a plain loop in this process), then with
one worker per core. Prints both rates and their ratio (target: at least 1.6x on 2 cores).

    python benchmarks/preprocess_speed.py                   # 48 pictures of 3000x2000
    python benchmarks/preprocess_speed.py --n 12 --size 1500x1000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def make_picture(seed: int, size: tuple[int, int]):
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x / w * 255), (y / h * 255), ((x + y) / (w + h) * 255)], axis=-1)
    base = (base * rng.uniform(0.3, 1.0, 3) + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype("uint8")
    image = Image.fromarray(base)
    draw = ImageDraw.Draw(image)
    for _ in range(30):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        r = int(rng.integers(20, min(w, h) // 6))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return image.filter(ImageFilter.GaussianBlur(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=48, help="pictures")
    parser.add_argument("--size", default="3000x2000", help="WIDTHxHEIGHT of each picture")
    parser.add_argument("--crop", default="focal")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))

    from oneword.prep.preprocess import PreprocessConfig, preprocess

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for i in range(args.n):
            make_picture(i, size).save(src / f"{i:03d}.jpg", quality=92)
        rates = {}
        for workers in (1, cores):
            dst = Path(tmp) / f"dst-{workers}"
            start = time.perf_counter()
            result = preprocess(PreprocessConfig(src, dst, width=512, crop=args.crop, workers=workers))
            seconds = time.perf_counter() - start
            assert result.processed == args.n, result.skipped
            rates[workers] = args.n / seconds
            print(f"workers {workers}: {args.n} pictures of {size[0]}x{size[1]} in {seconds:.1f} s, "
                  f"{rates[workers]:.2f} pictures/s", flush=True)
    print(f"{cores} workers vs a single-process loop: {rates[cores] / rates[1]:.2f}x (target >= 1.6x on 2 cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Persistence-image speed against persim's PersistenceImager, side by side in one run (ratios).

    python benchmarks/descriptor_speed.py

Diagrams of 216-atom amorphous carbon cells (benchmarks/cells.py); the grid of the default config
(40 x 40) and of the authors' tutorial (128 x 128). Also prints the largest difference (must be < 1e-10)
and the homology time of the same cells for scale.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from topoamorph import homology  # noqa: E402
from topoamorph.descriptors import PersistenceImage  # noqa: E402


def main() -> int:
    import persim
    from cells import amorphous_carbon

    cells = amorphous_carbon(216, densities=(2.0, 3.0), frames_per_density=5)
    t0 = time.perf_counter()
    dgms = [homology.compute(a).diagrams for a in cells]
    t_ph = (time.perf_counter() - t0) / len(cells)
    print(f"homology: {1000 * t_ph:.1f} ms per 216-atom cell (PD0-PD2)")
    print("| grid | persim ms/cell | topoamorph ms/cell | ratio | max |diff| |")
    print("|---|---|---|---|---|")
    for bins, sigma in ((40, 0.1), (128, 0.08)):
        vec = PersistenceImage(dims=(0, 1, 2), bins=bins, range=(0.0, 4.0), sigma=sigma, normalize="none").fit()
        t0 = time.perf_counter()
        ours = vec.images(dgms)
        t_ours = (time.perf_counter() - t0) / len(cells)
        pim = persim.PersistenceImager(
            birth_range=(0.0, 4.0),
            pers_range=(0.0, 4.0),
            pixel_size=4.0 / bins,
            weight=lambda b, d: np.ones_like(b),
            weight_params={},
            kernel_params={"sigma": sigma**2},
        )
        t0 = time.perf_counter()
        ref = np.array([[pim.transform(d[k][np.isfinite(d[k][:, 1])], skew=False) for k in range(3)] for d in dgms])
        t_ref = (time.perf_counter() - t0) / len(cells)
        print(
            f"| {bins}x{bins}, σ {sigma} | {1000 * t_ref:.1f} | {1000 * t_ours:.2f} | {t_ref / t_ours:.0f}x | "
            f"{np.abs(ref - ours).max():.1e} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The PH models as force fields: forces against DFT, and energy conservation in NVE molecular dynamics.

    python benchmarks/forces.py [--dft FILE.extxyz] [--campaign results/demo] [--steps 2000] [--weight atan]

1. Forces against DFT: a ridge and a CNN on persistence images (``--weight``, continuous by default) are
   trained on the energies of the train part of a real DFT file (GAP-20 low-density carbon: default the copy
   in tests/data/gap20), through the workflow's own stage functions (homology, descriptors, split,
   train_ridge, train_cnn); on the test part their analytic forces are compared with the DFT forces, beside two
   honest references on the same frames: zero forces (the mean |F| component) and the embedded REBO-II
   potential's forces.
2. NVE: a ridge trained the same way on a campaign's own diagrams (default the demo: REBO-II a-C, 64 atoms)
   drives velocity-Verlet MD of one of its 64-atom cells (0.5 fs steps, 300 K start) for ``--steps``; the
   total-energy drift per ps per atom is printed beside REBO-II's in the same integrator.

Everything is measured here, in one run; docs/models.md records the numbers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from topoamorph import distribute, engines, load_model  # noqa: E402
from topoamorph.formats.frames import read_atoms  # noqa: E402
from topoamorph.io import read_json  # noqa: E402
from topoamorph.settings import HomologySettings, defaults  # noqa: E402
from topoamorph.stages import descriptors as sd  # noqa: E402
from topoamorph.stages import train  # noqa: E402


def train_models(diagrams: list[str], work: Path, weight: str, cnn: bool, seed: int = 3) -> dict:
    d = defaults()
    desc = dict(d["descriptors"], weight=weight, weight_c=2.0)
    sd.descriptors(diagrams=diagrams, dataset=str(work / "d.h5"), descriptors=desc)
    train.split(
        dataset=str(work / "d.h5"),
        split=str(work / "split.json"),
        settings={"by": "frame", "test_fraction": 0.25, "validation_fraction": 0.15},
        seed=seed,
    )
    common = dict(
        dataset=str(work / "d.h5"),
        split=str(work / "split.json"),
        seed=seed,
        homology=HomologySettings.from_config({}).compute_options(),
        species=["C"],
        uncertainty=dict(d["train"]["uncertainty"], bootstrap=4, cnn_members=2),
    )
    out = {}
    train.train_ridge(
        **common,
        metrics=str(work / "ridge.json"),
        predictions=str(work / "ridge.csv"),
        model=str(work / "ridge.npz"),
        ridge=d["train"]["ridge"],
    )
    out["ridge"] = work / "ridge.npz"
    if cnn:
        train.train_cnn(
            **common,
            metrics=str(work / "cnn.json"),
            predictions=str(work / "cnn.csv"),
            model=str(work / "cnn.pt"),
            cnn=dict(d["train"]["cnn"], device="cpu"),
        )
        out["cnn"] = work / "cnn.pt"
    return out


def force_table(dft: Path, weight: str, cnn: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        assert (
            distribute.run([str(dft)], str(work / "b.h5"), HomologySettings.from_config({}), energy_key="energy") == 0
        )
        files = train_models([str(work / "b.h5")], work, weight, cnn)
        test = read_json(work / "split.json")["test"]
        frames = read_atoms(dft)
        ref = [np.asarray(frames[i].arrays["force"]) for i in test]
        rows = {"zero forces (mean |F|)": [np.zeros_like(f) for f in ref]}
        rebo = engines.calculator({"name": "lammps", "potential": "rebo"}, "C")
        rows["REBO-II (embedded LAMMPS)"] = []
        for i in test:
            a = frames[i].copy()
            a.calc = rebo
            rows["REBO-II (embedded LAMMPS)"].append(a.get_forces())
        for name, path in files.items():
            model = load_model(path)
            t0 = time.perf_counter()
            rows[f"PH {name} (weight {weight})"] = [model.energy_and_forces(frames[i])[1] for i in test]
            per = (time.perf_counter() - t0) / len(test)
            metrics = read_json(work / f"{name}.json")
            print(
                f"# {name}: test energy MAE {metrics['test']['mae_mev_per_atom']:.1f} meV/atom; "
                f"{per:.2f} s per frame for energy and forces"
            )
    dref = np.concatenate(ref).ravel()
    print(f"\nforces on {len(test)} test frames of {dft.name} ({dref.size // 3} atoms), eV/Å per component")
    print(f"{'model':34s} {'MAE':>8s} {'RMSE':>8s} {'corr':>6s}")
    for name, pred in rows.items():
        p = np.concatenate(pred).ravel()
        corr = np.corrcoef(p, dref)[0, 1] if p.std() > 0 else float("nan")
        print(f"{name:34s} {np.abs(p - dref).mean():8.3f} {np.sqrt(((p - dref) ** 2).mean()):8.3f} {corr:6.2f}")


def nve(campaign: Path, weight: str, steps: int, dt_fs: float = 0.5) -> None:
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    from topoamorph.calculator import TopoamorphCalculator

    diagrams = sorted(str(p) for p in (campaign / "diagrams").glob("batch*.h5"))
    cell = sorted((campaign / "structures").glob("rho2.50/*.extxyz"))[0]
    start = read_atoms(cell)[-1]
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(train_models(diagrams, Path(tmp), weight, cnn=False)["ridge"])
        print(f"\nNVE, {len(start)} atoms of {cell} (last frame), {dt_fs} fs steps x {steps}, 300 K start")
        print(f"{'potential':34s} {'drift meV/ps/atom':>18s} {'std E meV/atom':>15s} {'s/step':>8s}")
        for name, calc in (
            (f"PH ridge (weight {weight})", TopoamorphCalculator(model)),
            ("REBO-II (embedded LAMMPS)", engines.calculator({"name": "lammps"}, "C")),
        ):
            a = start.copy()
            a.calc = calc
            MaxwellBoltzmannDistribution(a, temperature_K=300, rng=np.random.default_rng(0))
            Stationary(a)
            md = VelocityVerlet(a, timestep=dt_fs * units.fs)
            energies = []
            t0 = time.perf_counter()
            for _ in range(steps):
                md.run(1)
                energies.append(a.get_total_energy())
            sec = (time.perf_counter() - t0) / steps
            e = np.array(energies) / len(a)
            t_ps = np.arange(len(e)) * dt_fs / 1000.0
            slope = np.polyfit(t_ps, e, 1)[0]
            print(f"{name:34s} {1000 * slope:18.3f} {1000 * e.std():15.3f} {sec:8.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dft", type=Path, default=ROOT / "tests" / "data" / "gap20" / "gap20_LD_iter1.extxyz")
    ap.add_argument("--campaign", type=Path, default=ROOT / "results" / "demo")
    ap.add_argument("--weight", default="atan", choices=["none", "linear", "atan"])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--no-cnn", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    force_table(args.dft, args.weight, cnn=not args.no_cnn)
    if (args.campaign / "diagrams").is_dir():
        nve(args.campaign, args.weight, args.steps)
    else:
        print(f"\nNVE skipped: no campaign at {args.campaign} (make campaign)")


if __name__ == "__main__":
    main()

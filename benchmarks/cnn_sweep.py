"""CNN settings against test error on a finished campaign's dataset and split, one variant at a time.

Each variant is the campaign's `train.cnn` block with some keys changed, trained from the same seed on the same
train/validation/test split as `train_cnn` (streamed from the dataset file, as the rule does); the table gives
test MAE, the best epoch, epochs run and seconds per epoch. Variants named `+seedN` train the reference
settings from seed N: the ensemble rows average the predictions of the members listed, which is what
`train.uncertainty.cnn_members` does. Results are appended to a JSON file as each variant finishes, so a long
sweep can be stopped and resumed (`--out` is read back; finished variants are skipped).

Usage (the paper-shaped campaign; on 2 CPU cores 12 epochs at 128 bins take 15-25 min per variant):
  .venv/bin/python benchmarks/cnn_sweep.py results/paper-cheap --config config/paper-cheap.yaml \\
      --variant 'pool=avg' --variant 'batch_size=32' --variant '+seed1' --threads 1 --out results/cnn_sweep.json
A variant is `key=value[,key=value...]` over train.cnn keys (values parsed as YAML: `channels=[32,64]`), or
`+seedN`. `--fraction 0.05` trains on the learning curve's 5 % subset instead, with the step budget of
`train.learning_curve.cnn_budget` (`--budget`). No GPU is needed; with one (`device=cuda`) the same command records
GPU epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from topoamorph import config as cfg
from topoamorph import models
from topoamorph.formats.dataset import Dataset
from topoamorph.stages import train


def parse_variant(text: str) -> tuple[str, dict, int]:
    """(name, changed train.cnn keys, seed offset) of one --variant."""
    if text.startswith("+seed"):
        return text, {}, int(text[len("+seed") :])
    changes = {}
    for item in _split_top(text):
        key, _, value = item.partition("=")
        if not key or not _:
            raise SystemExit(f"--variant {text!r}: expected key=value[,key=value] or +seedN")
        changes[key.strip()] = yaml.safe_load(value)
    return text, changes, 0


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets (``channels=[32,64],pool=avg``)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return out + [cur]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("campaign", type=Path, help="results/<campaign> with dataset/descriptors.h5 and dataset/split.json")
    ap.add_argument("--config", type=Path, required=True, help="the campaign's config (its train.cnn is the reference)")
    ap.add_argument("--variant", action="append", default=[], help="key=value[,...] or +seedN (repeatable)")
    ap.add_argument("--reference", action="store_true", help="also train the reference settings from the seed")
    ap.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="train on this fraction of the train part: the learning curve's nested subset (same seed)",
    )
    ap.add_argument(
        "--budget",
        choices=["steps", "epochs"],
        default="steps",
        help="with --fraction below 1: train.learning_curve.cnn_budget (stages.train.cnn_budget)",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    conf = cfg.load(args.config)
    reference, seed = dict(conf["train"]["cnn"]), int(conf["seed"])
    dataset, split = args.campaign / "dataset" / "descriptors.h5", args.campaign / "dataset" / "split.json"
    y, meta, parts = train._load(str(dataset), str(split))
    done = json.loads(args.out.read_text()) if args.out.exists() else {"reference": reference, "runs": {}}
    variants = ([("reference", {}, 0)] if args.reference else []) + [parse_variant(v) for v in args.variant]
    test = parts["test"]
    tr = parts["train"]
    subset = train.curve_subsets(tr, [args.fraction], seed)[0]
    with Dataset(str(dataset)) as ds:
        for name, changes, offset in variants:
            if name in done["runs"]:
                print(f"{name}: done before, skipped", file=sys.stderr)
                continue
            params = train.cnn_budget(dict(reference, **changes), len(tr), len(subset), args.budget)
            t = time.perf_counter()
            m = train._cnn_fit(ds, y, parts, params, seed + offset, train_index=subset)
            seconds = time.perf_counter() - t
            pred = m.predict(ds)
            done["runs"][name] = {
                "changes": changes,
                "seed": seed + offset,
                "n_train": int(len(subset)),
                "params": params,
                "seconds": round(seconds, 1),
                "seconds_per_epoch": round(seconds / len(m.history_), 1),
                "timing": m.timing_,
                "best_epoch": int(m.best_epoch_),
                "epochs_run": len(m.history_),
                "test": models.errors(y[test], pred[test]),
                "history": m.history_,
                "test_pred": pred[test].tolist(),
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(done, indent=1))
            print(
                f"{name}: test MAE {done['runs'][name]['test']['mae_mev_per_atom']:.2f} meV/atom, "
                f"{seconds / len(m.history_):.0f} s/epoch",
                file=sys.stderr,
                flush=True,
            )
    table(done, y[test])


def table(done: dict, y_test):
    print("| variant | test MAE meV/atom | RMSE | best epoch / run | s per epoch |\n|---|---|---|---|---|")
    for name, r in done["runs"].items():
        print(
            f"| {name} | {r['test']['mae_mev_per_atom']:.1f} | {r['test']['rmse_mev_per_atom']:.1f} | "
            f"{r['best_epoch']} / {r['epochs_run']} | {r['seconds_per_epoch']:.0f} |"
        )
    seeds = [n for n in done["runs"] if n == "reference" or n.startswith("+seed")]
    for k in range(2, len(seeds) + 1):
        mean = np.mean([done["runs"][n]["test_pred"] for n in seeds[:k]], axis=0)
        e = models.errors(y_test, mean)
        print(
            f"| ensemble of {k} ({', '.join(seeds[:k])}) | {e['mae_mev_per_atom']:.1f} | "
            f"{e['rmse_mev_per_atom']:.1f} | – | – |"
        )


if __name__ == "__main__":
    main()

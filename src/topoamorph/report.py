"""Figures and tables of a campaign: metrics table, parity plots, example diagrams, ridge
coefficient maps on the (birth, death) plane, learning curve, error per density, and energy against
density per protocol stage."""

from __future__ import annotations

import csv
import json
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .formats.predictions import read_applied, read_predictions  # noqa: E402
from .formats.trace import read_trace  # noqa: E402
from .io import atomic_path, read_json  # noqa: E402
from .provenance import csv_header, record  # noqa: E402
from .units import ALPHA_UNIT  # noqa: E402

log = logging.getLogger(__name__)


def _save(fig, path, dpi):
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(
            tmp,
            dpi=dpi,
            bbox_inches="tight",
            format="png",
            metadata={"Software": "topoamorph", "Description": json.dumps(record(), sort_keys=True)},
        )
    plt.close(fig)


PH_MODELS = ("ridge", "cnn")  # the persistent-homology models; the others are baselines


def headline(rows: list[dict], regime: dict | None = None) -> list[str]:
    """The report's first lines: which model is best on the test part and by how much (also when a baseline
    beats the PH models), and which regime the data are in (amorphous or near-crystalline)."""
    ranked = [r for r in rows if r.get("test_mae") is not None]
    lines = []
    if ranked:
        best = ranked[0]
        ph = [r for r in ranked if r["model"] in PH_MODELS]
        second = ranked[1] if len(ranked) > 1 else None
        text = f"**Best on the test part: {best['model']}**, MAE {best['test_mae']:.2f} meV/atom"
        if second is not None:
            gap = second["test_mae"] - best["test_mae"]
            text += (
                f", {gap:.2f} meV/atom ({100 * gap / max(second['test_mae'], 1e-12):.1f}% of its MAE) below the "
                f"next, {second['model']}"
            )
        lines.append(text + ".")
        if ph and best["model"] not in PH_MODELS:
            top = ph[0]
            gap = top["test_mae"] - best["test_mae"]
            lines.append(
                f"A baseline beats the persistent-homology models here: the best of them, {top['model']}, is "
                f"{gap:.2f} meV/atom ({100 * gap / top['test_mae']:.1f}% of its MAE) worse on the test part."
            )
        elif ph:
            base = [r for r in ranked if r["model"] not in PH_MODELS]
            if base:
                gap = base[0]["test_mae"] - best["test_mae"]
                lines.append(
                    f"The best baseline, {base[0]['model']}, is {gap:.2f} meV/atom "
                    f"({100 * gap / base[0]['test_mae']:.1f}% of its MAE) worse on the test part."
                )
    if regime:
        frac = regime["crystalline_frames"]
        what = (
            "near-crystalline data: the persistent-homology descriptor's accuracy claim is for amorphous "
            "structures, and on near-crystalline cells SOAP is expected to win (docs/accuracy.md)"
            if frac > 0.5
            else "amorphous data, the method's domain"
            if frac < 0.1
            else "mostly amorphous data with a sizeable near-crystalline part"
        )
        lines.append(
            f"Regime: {100 * frac:.1f}% of {regime['frames']} frames are crystal-like (more than half their "
            f"atoms in diamond- or graphite-like environments; mean fraction of such atoms "
            f"{100 * regime['crystalline_atoms']:.1f}%): {what}."
        )
    return lines


def metrics_table(metrics_files: dict, md_out, csv_out, regime: dict | None = None) -> list[dict]:
    rows, evaluations = [], {}
    for name, path in metrics_files.items():
        m = read_json(path)
        row = {"model": name}
        for part in ("train", "validation", "test"):
            if part in m:
                row[f"{part}_mae"] = m[part]["mae_mev_per_atom"]
                row[f"{part}_rmse"] = m[part]["rmse_mev_per_atom"]
                row[f"{part}_n"] = m[part]["n"]
        cal = (m.get("calibration") or {}).get("test") or {}
        row["test_within_1sigma"], row["test_within_2sigma"] = cal.get("within_1sigma"), cal.get("within_2sigma")
        row["test_sigma_rank_correlation"] = cal.get("spearman_sigma_abs_error")
        for file, sec in (m.get("evaluation") or {}).items():
            evaluations.setdefault(file, {})[name] = sec
        rows.append(row)
    rows.sort(key=lambda r: r.get("test_mae", np.inf))
    cols = [
        "model",
        "test_mae",
        "test_rmse",
        "test_n",
        "train_mae",
        "train_rmse",
        "train_n",
        "validation_mae",
        "validation_n",
        "test_within_1sigma",
        "test_within_2sigma",
        "test_sigma_rank_correlation",
    ]
    with atomic_path(csv_out) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header() + "\n")
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    fmt = lambda v: "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    lines = [
        "| model | test MAE | test RMSE | test n | train MAE | train RMSE | train n | validation MAE | "
        "validation n | test within 1σ | test within 2σ | test σ rank corr. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |")
    prov = record()
    camp = prov.get("campaign") or {}
    text = "\n\n".join(headline(rows, regime)) + "\n\n" if rows else ""
    text += (
        "Errors in meV/atom (energy per atom), best test MAE first; within 1σ/2σ: fraction of test frames "
        "whose error lies within the model's calibrated σ (ideal 0.68 / 0.95); σ rank corr.: Spearman's rank "
        "correlation of σ with |error| on the test frames (– where σ is one constant: it ranks nothing).\n\n"
        + "\n".join(lines)
        + "\n"
    )
    for file, secs in evaluations.items():
        text += "\n" + evaluation_table(file, secs)
    text += (
        f"\n<!-- provenance: {json.dumps(prov, sort_keys=True)} -->\n"
        f"Code {prov.get('git_commit') or 'unknown commit'}, config hash {camp.get('config_hash', '-')}, "
        f"engine {camp.get('engine_version', camp.get('engine', '-'))}, seed {camp.get('seed', '-')}.\n"
    )
    with atomic_path(md_out) as tmp:
        tmp.write_text(text)
    return rows


def evaluation_table(file: str, sections: dict) -> str:
    """Markdown table of every model on one evaluation file."""
    any_sec = next(iter(sections.values()))
    head = (
        f"### Evaluation: {file} ({any_sec['file']}, {any_sec['n_frames']} frames of {any_sec['n_atoms']} atoms, "
        f"{any_sec['n_with_reference']} with reference energies)\n\n"
    )
    lines = [
        "| model | MAE | RMSE | MAE in domain | n in domain | out of domain | within 1σ | within 2σ |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "–" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v))  # noqa: E731
    order = sorted(sections, key=lambda k: (sections[k].get("all") or {}).get("mae_mev_per_atom") or np.inf)
    for name in order:
        sec = sections[name]
        a, i, c = sec.get("all") or {}, sec.get("in_domain") or {}, sec.get("calibration") or {}
        reasons = ", ".join(f"{k} {v}" for k, v in sec["out_of_domain_reasons"].items())
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    fmt(a.get("mae_mev_per_atom")),
                    fmt(a.get("rmse_mev_per_atom")),
                    fmt(i.get("mae_mev_per_atom")),
                    fmt(i.get("n")),
                    f"{sec['n_out_of_domain']}" + (f" ({reasons})" if reasons else ""),
                    fmt(c.get("within_1sigma")),
                    fmt(c.get("within_2sigma")),
                ]
            )
            + " |"
        )
    return head + "\n".join(lines) + "\n"


def parity_plots(prediction_files: dict, out, dpi=110) -> None:
    names = list(prediction_files)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        p = read_predictions(prediction_files[name])
        for part, color in (("train", "0.75"), ("validation", "tab:orange"), ("test", "tab:blue")):
            m = p["part"] == part
            if m.any():
                yerr = p["sigma"][m] if part == "test" and np.isfinite(p["sigma"][m]).all() else None
                ax.errorbar(
                    p["y"][m],
                    p["pred"][m],
                    yerr=yerr,
                    fmt="o",
                    ms=2,
                    color=color,
                    label=part,
                    alpha=0.8,
                    lw=0,
                    elinewidth=0.5,
                )
        lo, hi = min(p["y"].min(), p["pred"].min()), max(p["y"].max(), p["pred"].max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        t = p["part"] == "test"
        mae = 1000 * np.mean(np.abs(p["pred"][t] - p["y"][t]))
        ax.set_title(f"{name}: test MAE {mae:.1f} meV/atom", fontsize=9)
        ax.set_xlabel("reference energy (eV/atom)")
        ax.set_ylabel("predicted (eV/atom)")
        ax.legend(fontsize=7, markerscale=2)
    _save(fig, out, dpi)


def reliability_bins(errors, sigma, bins: int = 5) -> dict:
    """The reliability diagram's points: frames in ``bins`` groups of equal size by σ, each group's mean σ and
    RMS error (a σ that ranks errors rises along the diagonal; a constant σ is one point)."""
    e, s = np.abs(np.asarray(errors, float)), np.asarray(sigma, float)
    order = np.argsort(s, kind="stable")
    groups = [g for g in np.array_split(order, max(1, min(int(bins), len(order)))) if len(g)]
    return {
        "mean_sigma": np.array([s[g].mean() for g in groups]),
        "rms_error": np.array([np.sqrt(np.mean(e[g] ** 2)) for g in groups]),
        "n": np.array([len(g) for g in groups]),
    }


def calibration_plot(prediction_files: dict, out, dpi=110) -> None:
    """Left: observed fraction of test errors within k σ against the Gaussian fraction, k in (0, 3]. Right: the
    reliability diagram, RMS test error of frames binned by σ against their mean σ, with the ideal line and
    each model's rank correlation of σ with |error| (coverage alone is met by a constant σ)."""
    from scipy.special import erf

    from .uncertainty import spearman

    k = np.linspace(0.02, 3.0, 60)
    expected = erf(k / np.sqrt(2))
    fig, (ax, rel) = plt.subplots(1, 2, figsize=(9.2, 4.2))
    top, bottom = 0.0, np.inf
    for c, (name, path) in enumerate(prediction_files.items()):
        p = read_predictions(path)
        t = (p["part"] == "test") & np.isfinite(p["sigma"]) & (p["sigma"] > 0)
        if not t.any():
            continue
        err, sig = 1000 * (p["pred"][t] - p["y"][t]), 1000 * p["sigma"][t]
        z = np.abs(err) / sig
        ax.plot(expected, [(z <= kk).mean() for kk in k], color=f"C{c}", label=name, lw=1.2)
        b = reliability_bins(err, sig)
        rho = spearman(sig, np.abs(err))
        rel.plot(
            b["mean_sigma"],
            b["rms_error"],
            "o-",
            color=f"C{c}",
            ms=3,
            lw=1,
            label=f"{name} (ρ {'–' if rho is None else f'{rho:.2f}'})",
        )
        top = max(top, b["mean_sigma"].max(), b["rms_error"].max())
        bottom = min(bottom, b["mean_sigma"].min(), b["rms_error"].min())
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    for e in (erf(1 / np.sqrt(2)), erf(2 / np.sqrt(2))):
        ax.axvline(e, color="0.8", lw=0.6)
    ax.set_xlabel("expected fraction within kσ (Gaussian)")
    ax.set_ylabel("observed fraction of test frames")
    ax.set_title("calibration of σ on the test part (grey: 1σ, 2σ)", fontsize=9)
    ax.legend(fontsize=7)
    if top > 0:  # logarithmic: the PH models and the mean baseline differ by an order of magnitude
        lo = max(bottom, 1e-3 * top) / 1.2 if np.isfinite(bottom) and bottom > 0 else 1e-3 * top
        rel.plot([lo, 1.2 * top], [lo, 1.2 * top], "k--", lw=0.8)
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        rel.set_xscale("log")
        rel.set_yscale("log")
        for axis in (rel.xaxis, rel.yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
    rel.set_xlabel("mean σ of the bin (meV/atom)")
    rel.set_ylabel("RMS test error of the bin (meV/atom)")
    rel.set_title("reliability: test frames in 5 bins by σ (ρ: Spearman of σ with |error|)", fontsize=9)
    rel.legend(fontsize=7)
    _save(fig, out, dpi)


def evaluation_plot(name: str, applied_files: dict, out, dpi=110) -> None:
    """Every model on one evaluation file: parity with 1σ bars (open: out of domain), or prediction against
    density when the frames carry no reference energy."""
    models = list(applied_files)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.6), squeeze=False)
    for ax, model in zip(axes[0], models):
        p = read_applied(applied_files[model])
        ref, pred, sig, inside = (
            p["reference_energy_per_atom_ev"],
            p["energy_per_atom_ev"],
            p["sigma_ev_per_atom"],
            p["in_domain"],
        )
        has = np.isfinite(ref)
        x = ref if has.any() else p["density"]  # with some references: the parity of those frames
        shown = has if has.any() else np.ones(len(ref), bool)
        for sel, face, label in ((inside & shown, "tab:blue", "in domain"), (~inside & shown, "none", "out of domain")):
            if sel.any():
                ax.errorbar(
                    x[sel],
                    pred[sel],
                    yerr=sig[sel],
                    fmt="o",
                    ms=3,
                    mfc=face,
                    mec="tab:blue",
                    ecolor="0.6",
                    elinewidth=0.5,
                    lw=0,
                    label=label,
                )
        if has.any():
            lo, hi = min(ref[has].min(), pred[has].min()), max(ref[has].max(), pred[has].max())
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_title(
                f"{model}: MAE {1000 * np.mean(np.abs(pred[has] - ref[has])):.1f} meV/atom ({int(has.sum())} frames)",
                fontsize=9,
            )
            ax.set_xlabel("reference energy (eV/atom)")
        else:
            ax.set_title(f"{model} (no reference energies)", fontsize=9)
            ax.set_xlabel("density (g/cm³)")
        ax.set_ylabel("predicted (eV/atom)")
        ax.legend(fontsize=7)
    fig.suptitle(f"evaluation: {name}", fontsize=10)
    _save(fig, out, dpi)


def example_frames(dataset_meta: dict, n_examples=4) -> np.ndarray:
    """Rows of the dataset whose diagrams the report draws: ``n_examples`` frames spread across the density
    range (final stage where available), in increasing density."""
    rho = np.asarray(dataset_meta["density"])
    stage = np.asarray(dataset_meta["stage"])
    final = stage == stage[-1] if len(stage) else np.ones(len(rho), bool)
    pool = np.nonzero(final)[0] if final.any() else np.arange(len(rho))
    order = pool[np.argsort(rho[pool], kind="stable")]
    return order[np.linspace(0, len(order) - 1, min(n_examples, len(order))).round().astype(int)]


def diagram_examples(dataset_meta: dict, picks, diagrams: list, out, dpi=110, units=ALPHA_UNIT) -> None:
    """PD0–PD2 of the dataset rows ``picks`` (``example_frames``); ``diagrams``: theirs, in that order."""
    rho = np.asarray(dataset_meta["density"])
    stage = np.asarray(dataset_meta["stage"])
    dims = sorted(diagrams[0])
    fig, axes = plt.subplots(len(dims), len(picks), figsize=(3.0 * len(picks), 2.9 * len(dims)), squeeze=False)
    for j, (i, dgm) in enumerate(zip(picks, diagrams)):
        for r, d in enumerate(dims):
            ax = axes[r, j]
            p = dgm[d]
            fin = p[np.isfinite(p[:, 1])]
            ax.scatter(fin[:, 0], fin[:, 1], s=4, alpha=0.6)
            top = max(fin[:, 1].max() if len(fin) else 1.0, 1e-3)
            ax.plot([0, top], [0, top], "k-", lw=0.5)
            ax.set_title(f"PD{d}, ρ={rho[i]:.2f} g/cm³, {stage[i]}", fontsize=8)
            ax.set_xlabel(f"birth ({_unit_label(units)})", fontsize=8)
            ax.set_ylabel(f"death ({_unit_label(units)})", fontsize=8)
    _save(fig, out, dpi)


def _unit_label(units: str) -> str:
    """'angstrom^2 (squared radius)' -> 'Å²' for axis labels."""
    u = str(units or "")
    return "Å²" if u.startswith("angstrom^2") else ("Å" if u.startswith("angstrom") else u)


def ridge_map(coef_file, dims, x_range, y_range, out, dpi=110, axes="birth_death", units=ALPHA_UNIT) -> None:
    """Ridge coefficients on the (birth, death) or (birth, persistence) plane: red raises the energy,
    blue lowers it."""
    from .trained import load_model

    model = load_model(coef_file)
    coef = model.arrays["coef"].reshape(model.header["image_shape"])
    (xlo, xhi), (ylo, yhi) = x_range, y_range
    u = _unit_label(units)
    second = "death" if axes == "birth_death" else "persistence"
    fig, axs = plt.subplots(1, len(dims), figsize=(3.6 * len(dims), 3.2), squeeze=False)
    for ax, d, c in zip(axs[0], dims, coef):
        v = np.abs(c).max() or 1.0
        im = ax.imshow(c.T, origin="lower", extent=[xlo, xhi, ylo, yhi], cmap="RdBu_r", vmin=-v, vmax=v, aspect="auto")
        if axes == "birth_death":
            ax.plot([xlo, xhi], [xlo, xhi], "k-", lw=0.5)
        ax.set_title(f"ridge coefficients, PD{d}", fontsize=9)
        ax.set_xlabel(f"birth ({u})")
        ax.set_ylabel(f"{second} ({u})")
        fig.colorbar(im, ax=ax, shrink=0.8, label="eV/atom per unit of descriptor")
    _save(fig, out, dpi)


def learning_curve(curve_file, out, dpi=110) -> None:
    """Test (solid) and validation (dashed) MAE against the number of training frames, log-log."""
    curve = read_json(curve_file)
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for k, (name, rows) in enumerate(curve["models"].items()):
        n = [r["n_train"] for r in rows]
        color = f"C{k}"
        ax.plot(n, [r["test"]["mae_mev_per_atom"] for r in rows], "o-", color=color, label=f"{name} (test)")
        val = [r["validation"]["mae_mev_per_atom"] for r in rows]
        if all(v is not None for v in val):
            ax.plot(n, val, "s--", color=color, alpha=0.6, ms=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training frames")
    ax.set_ylabel("MAE (meV/atom)")
    ax.set_title("learning curve (dashed: validation)", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, out, dpi)


def active_curve(curve_file, out_png, out_md, dpi=110) -> None:
    """The active-labelling loop: test MAE against the number of labelled frames for every strategy (σ-selected,
    random, the whole pool), and a table with how many labels σ-selection needed to reach the others' error."""
    curve = read_json(curve_file)
    names = {"sigma": "σ-selected", "random": "random", "all": "whole pool"}
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    lines = [
        f"# Active labelling ({curve.get('label_engine', '')} labels)",
        "",
        "| strategy | labels | test MAE (meV/atom) | test RMSE | within 1σ |",
        "|---|---|---|---|---|",
    ]
    order = sorted(curve["strategies"], key=lambda k: (list(names).index(k) if k in names else len(names), k))
    for k, strategy in enumerate(order):
        rows = curve["strategies"][strategy]
        n = [r["n_labels"] for r in rows]
        mae = [r["test"]["mae_mev_per_atom"] for r in rows]
        style = "*" if strategy == "all" else "o-"
        ax.plot(n, mae, style, color=f"C{k}", ms=9 if strategy == "all" else 5, label=names.get(strategy, strategy))
        for r in rows:
            lines.append(
                f"| {names.get(strategy, strategy)} | {r['n_labels']} | {r['test']['mae_mev_per_atom']:.1f} | "
                f"{r['test']['rmse_mev_per_atom']:.1f} | {r['calibration']['test']['within_1sigma']:.2f} |"
            )
    for arm in ("all", "random"):
        reach = curve.get(f"sigma_labels_to_reach_{arm}")
        if reach:
            got = reach["labels"]
            lines += [
                "",
                f"σ-selection reaches the {names[arm]}'s test MAE ({reach['target_mae_mev_per_atom']:.1f} "
                f"meV/atom with {reach['target_labels']} labels) "
                + (f"with {got} labels ({got / reach['target_labels']:.0%})." if got else "within no round."),
            ]
    ax.set_xlabel("labelled frames")
    ax.set_ylabel("test MAE (meV/atom)")
    ax.set_title("active labelling: test error against labels", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, out_png, dpi)
    with atomic_path(out_md) as tmp, open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def per_density_errors(metrics_files: dict, out, dpi=110, part="test") -> None:
    """MAE of every model per density bin (0.1 g/cm³) on ``part``."""
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for k, (name, path) in enumerate(metrics_files.items()):
        bins = read_json(path).get("per_density", {}).get(part, {})
        keys = sorted(bins, key=float)
        vals = [bins[b]["mae_mev_per_atom"] for b in keys]
        ax.plot([float(b) for b in keys], vals, "o-", color=f"C{k}", label=name, ms=4)
    ax.set_yscale("log")
    ax.set_xlabel("density (g/cm³)")
    ax.set_ylabel(f"{part} MAE (meV/atom)")
    ax.legend(fontsize=7)
    _save(fig, out, dpi)


def energy_vs_density(dataset_meta: dict, y, out, dpi=110) -> None:
    rho = np.asarray(dataset_meta["density"])
    stage = np.asarray(dataset_meta["stage"])
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for s in dict.fromkeys(stage):
        m = stage == s
        ax.scatter(rho[m], y[m], s=6, label=s or "(none)", alpha=0.7)
    ax.set_xlabel("density (g/cm³)")
    ax.set_ylabel("energy (eV/atom)")
    ax.legend(fontsize=7, title="stage", title_fontsize=7)
    _save(fig, out, dpi)


def structure_summary(rows: list[dict], rdfs: dict, out_png, out_csv, dpi=110) -> None:
    """sp3 fraction against density per protocol stage (mean and spread over frames), and g(r) of the final
    frames per density: the sanity check of generated amorphous carbon (sp3 must rise with density)."""
    keys = [
        "source",
        "frame",
        "density",
        "stage",
        "run",
        "time_ps",
        "sp",
        "sp2",
        "sp3",
        "mean_coordination",
        "crystalline",
    ]
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header() + "\n")
        w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    stages = list(dict.fromkeys(r["stage"] for r in rows))
    for s in stages:
        sel = [r for r in rows if r["stage"] == s]
        dens = sorted({round(r["density"], 2) for r in sel})
        mean = [np.mean([r["sp3"] for r in sel if round(r["density"], 2) == d]) for d in dens]
        std = [np.std([r["sp3"] for r in sel if round(r["density"], 2) == d]) for d in dens]
        ax.errorbar(dens, mean, yerr=std, marker="o", ms=3, capsize=2, label=s or "(none)")
    trend = sp3_trend(rows)
    if trend is not None:
        ax.set_title(
            f"final stage: Spearman(sp³, density) = {trend:+.2f}"
            f" ({'rises' if trend > 0 else 'does NOT rise'} with density)",
            fontsize=8,
        )
    ax.set_xlabel("density (g/cm³)")
    ax.set_ylabel("sp³ fraction (coordination ≥ 4 within 1.85 Å)")
    ax.legend(fontsize=7, title="stage", title_fontsize=7)
    for d, (r, g) in sorted(rdfs.items()):
        bx.plot(r, g, lw=1, label=f"{d:.2f} g/cm³")
    bx.set_xlabel("r (Å)")
    bx.set_ylabel("g(r), final frames")
    bx.legend(fontsize=7)
    _save(fig, out_png, dpi)


def sp3_trend(rows: list[dict]):
    """Spearman rank correlation of the sp3 fraction with density over the last stage's frames
    (positive for amorphous carbon in the literature); None with fewer than two densities."""
    from scipy.stats import spearmanr

    if not rows:
        return None
    last = rows[-1]["stage"]
    sel = [r for r in rows if r["stage"] == last]
    if len({round(r["density"], 2) for r in sel}) < 2:
        return None
    return float(spearmanr([r["density"] for r in sel], [r["sp3"] for r in sel]).statistic)


def traces(trace_files: dict, out_png, dpi=110) -> None:
    """Target and kinetic temperature and potential energy against time, one line per run coloured by
    density: where a run heated, melted, quenched, or went wrong."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.8))
    dens = sorted({d for d, _ in trace_files})
    cmap = plt.get_cmap("viridis")
    first = None
    for (d, run), path in sorted(trace_files.items()):
        t = read_trace(path)
        first = t if first is None else first
        c = cmap(dens.index(d) / max(1, len(dens) - 1))
        label = f"{d:.2f} g/cm³" if run == min(r for dd, r in trace_files if dd == d) else None
        ax.plot(t["time_ps"], t["kinetic_K"], lw=0.5, color=c, alpha=0.7, label=label)
        bx.plot(t["time_ps"], t["epot_eV_per_atom"], lw=0.7, color=c, alpha=0.8)
    ax.plot(first["time_ps"], first["target_K"], "k--", lw=0.8, label="target")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("kinetic temperature (K)")
    ax.legend(fontsize=6, ncol=2)
    bx.set_xlabel("time (ps)")
    bx.set_ylabel("potential energy (eV/atom)")
    _save(fig, out_png, dpi)


EXPLAINED_FRAMES = 3  # final-stage frames explained: low, middle and high density
ENVIRONMENTS = ("sp", "sp2", "sp3")  # coordination <= 2, 3, >= 4 within structure.BOND_CUTOFF
TOP_ATOMS = 5  # atoms ringed per sign in the explanation figure
TOP_PAIRS = 3  # pairs per sign whose birth and death simplices are drawn
EXPLANATION_KEYS = [
    "density",
    "stage",
    "source",
    "frame",
    "n_atoms",
    "environment",
    "atoms",
    "fraction",
    "mean_contribution_meV",
    "std_contribution_meV",
    "total_contribution_eV",
    "predicted_energy_eV",
    "baseline_eV",
]


def environments(atoms) -> np.ndarray:
    """Each atom's environment, 'sp', 'sp2' or 'sp3', from its coordination within ``structure.BOND_CUTOFF``
    (the convention of ``structure.hybridisation``)."""
    from .structure import coordination, environment_of

    return environment_of(coordination(atoms))


def explain_frames(model, atoms_list: list, results: list | None = None) -> list[dict]:
    """``potential.explain`` of each frame (``model``: a ``TrainedModel`` on persistence images; ``results``:
    the frames' stored ``PersistenceResult`` with their pairs' simplices, or None to compute them), with each
    atom's ``environment``."""
    from .potential import explain

    out = []
    for k, atoms in enumerate(atoms_list):
        ex = explain(model, atoms, result=None if results is None else results[k])
        ex["environment"] = environments(atoms)
        out.append(ex)
    return out


def environment_statistics(explained: list[dict], frames: list[dict]) -> list[dict]:
    """Per explained frame and environment (sp, sp2, sp3, and all atoms): atom count and fraction, mean and
    spread of the per-atom contribution (meV), their sum (eV). ``frames``: per frame, its density, stage,
    source and frame index."""
    rows = []
    for ex, fr in zip(explained, frames):
        c, env = np.asarray(ex["contribution"], dtype=float), ex["environment"]
        for name in ENVIRONMENTS + ("all",):
            sel = np.ones(len(c), bool) if name == "all" else env == name
            v = c[sel]
            rows.append(
                dict(
                    fr,
                    n_atoms=len(c),
                    environment=name,
                    atoms=int(sel.sum()),
                    fraction=float(sel.mean()) if len(c) else 0.0,
                    mean_contribution_meV=float(1e3 * v.mean()) if len(v) else float("nan"),
                    std_contribution_meV=float(1e3 * v.std()) if len(v) else float("nan"),
                    total_contribution_eV=float(v.sum()),
                    predicted_energy_eV=float(ex["energy"]),
                    baseline_eV=float(ex["baseline"]),
                )
            )
    return rows


def write_explanation_table(rows: list[dict], out_csv) -> None:
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(csv_header() + "\n")
        w = csv.DictWriter(fh, fieldnames=EXPLANATION_KEYS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def _top_pairs(pairs: list[dict]) -> list[tuple[dict, int]]:
    """The TOP_PAIRS pairs raising the energy most and the TOP_PAIRS lowering it most, with their sign."""
    ranked = sorted(pairs, key=lambda p: p["contribution_eV"])
    low = [(p, -1) for p in ranked[:TOP_PAIRS] if p["contribution_eV"] < 0]
    high = [(p, 1) for p in ranked[::-1][:TOP_PAIRS] if p["contribution_eV"] > 0]
    return high + low


def _edges(atoms, simplices: list[list[int]], pos) -> list:
    """Line segments (x-y) of the edges of ``simplices``, each drawn from its first atom along the minimum
    image, so that an edge across the cell's boundary stays short."""
    import itertools

    segs = []
    for s in simplices:
        for a, b in itertools.combinations(s, 2):
            d = atoms.get_distance(a, b, mic=True, vector=True)
            segs.append([pos[a, :2], pos[a, :2] + d[:2]])
    return segs


def explanations_figure(
    explained: list[dict], atoms_list: list, frames: list[dict], rows: list[dict], out, dpi=110
) -> None:
    """Per explained frame, the atoms projected on x-y, coloured by their contribution minus the frame's mean
    atom's (meV, red raises the energy, blue lowers it, one scale for all frames: the pairs carry most of the
    cohesive energy, so raw contributions all share one sign) and sized by its magnitude, bonds within
    ``structure.BOND_CUTOFF`` in grey, the TOP_ATOMS atoms of each sign ringed, and the edges of the birth
    (dashed) and death (solid) simplices of the TOP_PAIRS pairs of each sign; last panel: the mean per-atom
    contribution of sp, sp2 and sp3 atoms per density (``rows``: ``environment_statistics``)."""
    from ase.neighborlist import neighbor_list
    from matplotlib.collections import LineCollection

    from .structure import BOND_CUTOFF

    n = len(explained)
    fig, axes = plt.subplots(
        1, n + 1, figsize=(4.2 * n + 4.2, 4.4), squeeze=False, gridspec_kw={"width_ratios": [1.0] * n + [0.9]}
    )
    axes = axes[0]

    def centred(ex):  # meV relative to the frame's mean atom: the pairs carry most of the cohesive energy, so
        c = 1e3 * np.asarray(ex["contribution"], dtype=float)  # every raw contribution has the same sign
        return c - c.mean() if len(c) else c

    vmax = max([float(np.abs(centred(ex)).max()) for ex in explained if len(ex["contribution"])] + [1e-9])
    sc = None
    for ax, ex, atoms, fr in zip(axes, explained, atoms_list, frames):
        c = centred(ex)
        pos = atoms.get_positions(wrap=True)
        a, b = np.asarray(atoms.cell[:])[:2, :2]
        ax.plot(*np.array([[0, 0], a, a + b, b, [0, 0]]).T, color="0.5", lw=0.6, ls=":", zorder=0)
        i, j, D = neighbor_list("ijD", atoms, BOND_CUTOFF)
        keep = i < j
        ax.add_collection(
            LineCollection(
                [[pos[a, :2], pos[a, :2] + d[:2]] for a, d in zip(i[keep], D[keep])],
                colors="0.75",
                linewidths=0.4,
                zorder=1,
            )
        )
        for p, sign in _top_pairs(ex["pairs"]):
            color = "#b2182b" if sign > 0 else "#2166ac"
            for simplex, style in ((p["birth_atoms"], "--"), (p["death_atoms"], "-")):
                if len(simplex) > 1:
                    ax.add_collection(
                        LineCollection(
                            _edges(atoms, [simplex], pos),
                            colors=color,
                            linewidths=1.6,
                            linestyles=style,
                            alpha=0.9,
                            zorder=3,
                        )
                    )
        sc = ax.scatter(
            pos[:, 0],
            pos[:, 1],
            c=c,
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            s=8 + 70 * np.abs(c) / vmax,
            edgecolors="none",
            zorder=2,
        )
        order = np.argsort(c)
        for sel, color, label in (
            (order[::-1][:TOP_ATOMS], "#67001f", "largest +"),
            (order[:TOP_ATOMS], "#053061", "largest −"),
        ):
            sel = sel[(c[sel] > 0) if label == "largest +" else (c[sel] < 0)]
            ax.scatter(
                pos[sel, 0],
                pos[sel, 1],
                s=90,
                facecolors="none",
                edgecolors=color,
                linewidths=1.4,
                zorder=4,
                label=f"{label} ({len(sel)} atoms)",
            )
        ax.set_aspect("equal", adjustable="datalim")
        ax.autoscale_view()
        per_atom = 1e3 * (ex["energy"] - ex["baseline"]) / max(len(c), 1)
        ax.set_title(
            f"ρ={fr['density']:.2f} g/cm³, {fr['stage'] or 'frame'} {fr['frame']}\n"
            f"E={ex['energy'] / max(len(c), 1):.4f} eV/atom, pairs {per_atom:+.1f} meV/atom",
            fontsize=8,
        )
        ax.set_xlabel("x (Å)")
        ax.set_ylabel("y (Å)")
        ax.legend(fontsize=6, loc="upper right")
    if sc is not None:
        fig.colorbar(sc, ax=axes[n - 1], shrink=0.8, label="per-atom contribution minus the frame's mean (meV)")
    bx = axes[n]
    width = 0.8 / max(n, 1)
    cmap = plt.get_cmap("viridis")
    for k, fr in enumerate(frames):
        sel = {r["environment"]: r for r in rows if r["source"] == fr["source"] and r["frame"] == fr["frame"]}
        mean = [sel[e]["mean_contribution_meV"] if e in sel else np.nan for e in ENVIRONMENTS]
        std = [sel[e]["std_contribution_meV"] if e in sel else np.nan for e in ENVIRONMENTS]
        bx.bar(
            np.arange(len(ENVIRONMENTS)) + (k - (n - 1) / 2) * width,
            np.nan_to_num(mean),
            width,
            yerr=std,
            capsize=2,
            color=cmap(k / max(n - 1, 1)),
            label=f"{fr['density']:.2f} g/cm³",
        )
    bx.axhline(0, color="k", lw=0.5)
    bx.set_xticks(np.arange(len(ENVIRONMENTS)), ["sp (≤2)", "sp² (3)", "sp³ (≥4)"])
    bx.set_ylabel("mean per-atom contribution (meV), ± spread")
    bx.set_title(f"by environment (bonds within {BOND_CUTOFF} Å)", fontsize=8)
    bx.legend(fontsize=7)
    fig.suptitle(
        "ridge: per-atom contributions from the persistence pairs' birth and death simplices; maps: relative "
        "to the frame's mean atom (red raises the energy, blue lowers it); bars: absolute",
        fontsize=9,
    )
    _save(fig, out, dpi)


def explanations_unavailable(reason: str, out_png, out_csv, dpi=110) -> None:
    """The explanation outputs when the ridge model has none (a histogram or Rips model): a figure that says
    why and a table without rows."""
    fig, ax = plt.subplots(figsize=(6, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, "no per-atom explanations:\n" + reason, ha="center", va="center", fontsize=8, wrap=True)
    _save(fig, out_png, dpi)
    write_explanation_table([], out_csv)

"""Figures of the QC reports: slice mosaics with overlays and contours, and longitudinal plots.

Pure functions from arrays and tables to PNG bytes, drawn with matplotlib's object API (no
pyplot state, no display needed). Reference bands of annual brain volume change are the
pooled estimates of De Stefano et al. (2016, JNNP 87:93): MS -0.51 +/- 0.27 %/y, healthy
-0.27 +/- 0.15 %/y, with the -0.37 %/y cut-off that best separates them.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import ndimage

from msqmri.cohort.monitoring import PBVC_CUTOFF_PER_YEAR
from msqmri.cohort.tables import preferred_pbvc

#: annual PBVC (mean, SD) of healthy people and people with MS, %/y (De Stefano 2016)
REFERENCE_RATES = {"healthy": (-0.27, 0.15, "tab:green"), "MS": (-0.51, 0.27, "tab:red")}
REGION_COLOURS = {"nawm": "tab:blue", "gm": "tab:olive", "lesion": "tab:red", "perilesional": "tab:orange"}
METRIC_LABELS = {"mtr": "MTR (pu)", "fa": "FA", "md": "MD (mm$^2$/s)", "r2star": "R2* (1/s)"}
DAYS_PER_YEAR = 365.25


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp or software metadata, so identical inputs give identical
    files)."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, metadata={"Software": None})
    return buffer.getvalue()


def _views(mask: np.ndarray) -> list[tuple[int, int]]:
    """(axis, index) of the mosaic's slices: three axial slices at 30/50/70 % of the mask's extent,
    a coronal and a sagittal slice through its centre."""
    where = np.argwhere(mask)
    lo, hi = where.min(0), where.max(0)
    centre = (lo + hi) // 2
    axial = [int(lo[2] + f * (hi[2] - lo[2])) for f in (0.3, 0.5, 0.7)]
    return [(2, k) for k in axial] + [(1, int(centre[1])), (0, int(centre[0]))]


def focus_views(mask: np.ndarray, focus: np.ndarray) -> list[tuple[int, int]]:
    """Slices through ``focus`` (e.g. lesions): axial slices through the centres of its three largest
    connected parts, and coronal and sagittal slices through the largest; the default views of
    ``mask`` when ``focus`` is empty."""
    if not focus.any():
        return _views(mask)
    labels, _ = ndimage.label(focus)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes, kind="stable")[::-1][:3] + 1
    centres = [np.rint(c).astype(int) for c in ndimage.center_of_mass(focus, labels, order)]
    axial = sorted({int(c[2]) for c in centres})
    return [(2, k) for k in axial] + [(1, int(centres[0][1])), (0, int(centres[0][0]))]


def spread(signed: np.ndarray) -> np.ndarray:
    """A sparse signed map (e.g. edge displacement at edge points) widened by one voxel for display,
    each voxel taking the neighbouring value of largest magnitude."""
    high = ndimage.grey_dilation(np.maximum(signed, 0), size=3)
    low = ndimage.grey_erosion(np.minimum(signed, 0), size=3)
    return np.where(high >= -low, high, low)


def _cut(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """A 2D slice oriented for display (RAS volume: right of the subject on the right, superior up)."""
    return np.take(volume, index, axis=axis).T


def mosaic(
    background: np.ndarray,
    mask: np.ndarray,
    *,
    overlay: np.ndarray | None = None,
    overlay_range: tuple[float, float] | None = None,
    cmap: str = "hot",
    labels: bool = False,
    alpha: float = 0.8,
    contours: Sequence[tuple[np.ndarray, str]] = (),
    title: str = "",
    views: list[tuple[int, int]] | None = None,
) -> bytes:
    """Five slices of a RAS-canonical ``background`` (grey, windowed to its 1-99.5th percentiles in
    ``mask``) with an optional ``overlay`` (a colour map over nonzero voxels, with opacity ``alpha``;
    ``labels`` for label images) and ``contours`` (binary volumes drawn as outlines, with their colours)."""
    if not mask.any():
        mask = np.ones(background.shape, dtype=bool)
    views = views or _views(mask)
    lo, hi = np.percentile(background[mask], (1, 99.5))
    fig = Figure(figsize=(2.0 * len(views), 2.3), dpi=80, layout="constrained")
    axes = fig.subplots(1, len(views))
    for ax, (axis, index) in zip(np.atleast_1d(axes), views, strict=True):
        ax.imshow(_cut(background, axis, index), cmap="gray", vmin=lo, vmax=hi, origin="lower", interpolation="nearest")
        if overlay is not None:
            cut = _cut(overlay, axis, index).astype(float)
            shown = np.ma.masked_where(cut == 0, cut)
            vmin, vmax = overlay_range or (np.nanmin(overlay), np.nanmax(overlay) or 1.0)
            ax.imshow(
                shown,
                cmap="tab20" if labels else cmap,
                vmin=vmin,
                vmax=vmax,
                alpha=alpha,
                origin="lower",
                interpolation="nearest",
            )
        for volume, colour in contours:
            cut = _cut(volume, axis, index).astype(float)
            if cut.min() != cut.max():
                ax.contour(cut, levels=[0.5], colors=colour, linewidths=0.8)
        ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return to_png(fig)


def _years(times: pd.Series, baseline: pd.Timestamp | None) -> pd.Series:
    return (times - baseline).dt.total_seconds() / 86400 / DAYS_PER_YEAR


def _consecutive(pairs: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """The rows of a pair table whose sessions follow one another in ``order``."""
    index = {session: k for k, session in enumerate(order)}
    return pairs[pairs["session_to"].map(index) == pairs["session_from"].map(index) + 1]


def longitudinal(
    sessions: pd.DataFrame,
    pbvc: pd.DataFrame,
    activity: pd.DataFrame,
    regional: pd.DataFrame,
    volumes: pd.DataFrame,
    lesions: pd.DataFrame,
    title: str = "",
) -> bytes:
    """One subject's trajectories over time (years from baseline; session order when undated):
    cumulative PBVC with healthy/MS reference cones, annualised PBVC per interval against the
    reference bands and cut-off, lesion counts with new/enlarging lesions per interval, total lesion
    volume, and regional MTR/FA/MD/R2* means in NAWM, GM and lesions."""
    sessions = sessions.reset_index(drop=True)
    times = pd.to_datetime(sessions["acq_time"])
    dated = times.notna().all()
    when = dict(zip(sessions["session_id"], _years(times, times.iloc[0]) if dated else sessions.index, strict=True))
    unit = "years from baseline" if dated else "session (no acq_time)"
    fig = Figure(figsize=(13, 6), dpi=80, layout="constrained")
    axes = fig.subplots(2, 4)
    span = max(max(when.values()), 0.5)
    grid = np.linspace(0, span, 20)

    ax = axes[0, 0]
    for name, (rate, sd, colour) in REFERENCE_RATES.items():
        ax.fill_between(
            grid, (rate - sd) * grid, (rate + sd) * grid, color=colour, alpha=0.15, label=f"{name} {rate}±{sd} %/y"
        )
    baseline_id = sessions["session_id"].iloc[0]
    for marker, (method, rows) in zip("os", pbvc[pbvc["session_from"] == baseline_id].groupby("method"), strict=False):
        x = [0.0, *rows["session_to"].map(when)]
        ax.plot(x, [0.0, *rows["pbvc"]], marker=marker, label=method)
    ax.set(title="PBVC from baseline", xlabel=unit, ylabel="%")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for name, (rate, sd, colour) in REFERENCE_RATES.items():
        ax.axhspan(rate - sd, rate + sd, color=colour, alpha=0.15, label=name)
    ax.axhline(PBVC_CUTOFF_PER_YEAR, color="k", ls="--", lw=0.8, label=f"cut-off {PBVC_CUTOFF_PER_YEAR} %/y")
    for marker, (method, rows) in zip("os", _consecutive(pbvc, list(when)).groupby("method"), strict=False):
        start, end = rows["session_from"].map(when), rows["session_to"].map(when)
        ax.errorbar(
            (start + end) / 2, rows["pbvc_per_year"], xerr=(end - start) / 2, fmt=marker, capsize=3, label=method
        )
    ax.set(title="Annualised PBVC per interval", xlabel=unit, ylabel="%/y")
    ax.legend(fontsize=7)

    ax = axes[0, 2]
    counts = (
        lesions.groupby("session_id").size().reindex(list(when), fill_value=0)
        if len(lesions)
        else pd.Series(0, index=list(when))
    )
    ax.bar([when[s] for s in counts.index], counts.to_numpy(), width=0.08 * span, color="0.6", label="lesions")
    if len(activity):
        step = _consecutive(activity, list(when))
        mid = (step["session_from"].map(when) + step["session_to"].map(when)) / 2
        ax.plot(mid, step["n_new"] + step["n_enlarging"], "r^", label="new + enlarging")
    ax.set(title="T2 lesions", xlabel=unit, ylabel="count")
    ax.legend(fontsize=7)

    ax = axes[0, 3]
    ax.plot(volumes["session_id"].map(when), volumes["lesion_volume_ml"], "o-", color="tab:red")
    ax.set(title="Total lesion volume", xlabel=unit, ylabel="ml")

    for ax, metric in zip(axes[1], ("mtr", "fa", "md", "r2star"), strict=True):
        rows = regional[regional["metric"] == metric]
        for region, colour in REGION_COLOURS.items():
            line = rows[rows["region"] == region]
            if len(line):
                ax.plot(line["session_id"].map(when), line["mean"], "o-", color=colour, label=region)
        ax.set(title=METRIC_LABELS[metric], xlabel=unit)
        if len(rows):
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "not acquired", ha="center", va="center", transform=ax.transAxes, color="0.5")
    if title:
        fig.suptitle(title)
    return to_png(fig)


def cohort_pbvc(pbvc: pd.DataFrame, sessions: pd.DataFrame) -> bytes:
    """Annualised PBVC of every consecutive interval (one point each, by site; SIENA-like when both
    methods ran) against the healthy/MS reference bands and the cut-off."""
    pbvc = preferred_pbvc(pbvc)
    fig = Figure(figsize=(7, 3.5), dpi=80, layout="constrained")
    ax = fig.subplots()
    for name, (rate, sd, colour) in REFERENCE_RATES.items():
        ax.axhspan(rate - sd, rate + sd, color=colour, alpha=0.15, label=f"{name} {rate}±{sd} %/y")
    ax.axhline(PBVC_CUTOFF_PER_YEAR, color="k", ls="--", lw=0.8, label="cut-off")
    site = sessions.drop_duplicates("participant_id").set_index("participant_id")["site"].fillna("n/a").astype(str)
    order = {pid: list(group["session_id"]) for pid, group in sessions.groupby("participant_id", sort=False)}
    steps = (
        pd.concat([_consecutive(rows, order[pid]) for pid, rows in pbvc.groupby("participant_id")])
        if len(pbvc)
        else pbvc
    )
    sites = sorted(set(site))
    rng = np.random.default_rng(0)  # fixed jitter: the same figure on every run
    for k, name in enumerate(sites):
        rows = steps[steps["participant_id"].map(site) == name] if len(steps) else steps
        ax.plot(k + rng.uniform(-0.15, 0.15, len(rows)), rows.get("pbvc_per_year", []), "o", alpha=0.7)
    ax.set_xticks(range(len(sites)), sites)
    ax.set(xlabel="site", ylabel="PBVC (%/y)", xlim=(-0.6, max(len(sites), 1) - 0.4))
    ax.legend(fontsize=7, loc="lower right")
    return to_png(fig)

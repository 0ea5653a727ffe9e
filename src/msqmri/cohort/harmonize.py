"""ComBat harmonisation of regional metrics across sites (scanners/centres).

Empirical-Bayes location/scale adjustment of Johnson, Li & Rabinovic (2007, Biostatistics 8:118),
as applied to DTI and cortical measures by Fortin et al. (2017 NeuroImage 161:149; 2018
NeuroImage 167:104). Each feature ``y`` (a region x metric x statistic) is modelled as
``y = alpha + X beta + gamma_site + delta_site * eps``: biological covariates (age, sex) are kept,
the site's additive (gamma) and multiplicative (delta) effects are estimated per feature, shrunk
towards their across-feature prior, and removed.

Features are fitted one at a time on the observations that have them (a session without DWI has
no FA), so missing values need no imputation. The fitted model is a plain dict (saved as JSON):
a centre added later is harmonised to the same reference with :func:`apply_model`, which
estimates the new site's effects against the saved grand mean, covariate effects and pooled
variance (the approach of neuroHarmonize's ``harmonizationApply`` for unseen sites).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from msqmri.cohort.tables import read_group_table
from msqmri.core.io import MsqmriError, load_json, save_json, save_tsv

MIN_PER_SITE = 2  # observations of a feature a site needs for its scale estimate
MODEL_VERSION = 1


def _covariate_matrix(covariates: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """Design columns of the covariates: numeric ones centred on the fitted mean, categorical ones as
    indicators of every level after the first (levels saved in ``spec``)."""
    columns = []
    for name, info in spec.items():
        if info["type"] == "numeric":
            columns.append(covariates[name].to_numpy(float) - info["mean"])
        else:
            values = covariates[name].astype(str).to_numpy()
            unknown = sorted(set(values) - set(info["levels"]))
            if unknown:
                raise MsqmriError(f"covariate {name}: level(s) {', '.join(unknown)} were not in the fitted model")
            columns.extend((values == level).astype(float) for level in info["levels"][1:])
    return np.column_stack(columns) if columns else np.zeros((len(covariates), 0))


def _covariate_spec(covariates: pd.DataFrame, sites: np.ndarray) -> tuple[dict[str, Any], list[str]]:
    """How each usable covariate enters the design, and notes on those left out: a covariate missing
    for any observation, constant, or confounded with site (the design would be rank-deficient, and
    ComBat would then remove biology with the site effect)."""
    spec: dict[str, Any] = {}
    notes = []
    site_columns = (sites[:, None] == np.unique(sites)[None, :]).astype(float)
    for name in covariates.columns:
        values = covariates[name]
        if values.isna().any():
            notes.append(f"covariate {name} not used: missing for some observations")
            continue
        numeric = pd.api.types.is_numeric_dtype(values)
        info = (
            {"type": "numeric", "mean": float(values.mean())}
            if numeric
            else {"type": "categorical", "levels": sorted(values.astype(str).unique())}
        )
        trial = {**spec, name: info}
        design = np.hstack([site_columns, _covariate_matrix(covariates, trial)])
        if design.shape[1] == site_columns.shape[1] or np.linalg.matrix_rank(design) < design.shape[1]:
            notes.append(f"covariate {name} not used: constant or confounded with site")
            continue
        spec = trial
    return spec, notes


def _inverse_gamma_prior(delta_hat: np.ndarray) -> tuple[float, float]:
    """Method-of-moments inverse-gamma hyperparameters (a, b) of the site variances (Johnson 2007)."""
    mean, var = float(np.mean(delta_hat)), float(np.var(delta_hat, ddof=1)) if len(delta_hat) > 1 else 0.0
    if var <= 0:
        return np.inf, np.inf  # no spread across features: the prior pins delta* to its mean
    return (2 * var + mean**2) / var, (mean * var + mean**3) / var


def _shrink(
    s: list[np.ndarray], gamma_hat: np.ndarray, delta_hat: np.ndarray, eb: bool, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes (parametric) posterior site effects of one site over its features (Johnson 2007,
    eqs. 3.1-3.2, iterated to convergence); ``s`` holds each feature's standardised observations."""
    if not eb or len(gamma_hat) < 2:
        return gamma_hat, delta_hat
    gamma_bar, tau2 = float(np.mean(gamma_hat)), float(np.var(gamma_hat, ddof=1))
    a, b = _inverse_gamma_prior(delta_hat)
    n = np.array([len(v) for v in s], dtype=float)
    sum_sq = lambda g: np.array([np.sum((v - gi) ** 2) for v, gi in zip(s, g, strict=True)])  # noqa: E731
    gamma, delta = gamma_hat.copy(), delta_hat.copy()
    for _ in range(1000):
        gamma_new = (
            (n * tau2 * gamma_hat + delta * gamma_bar) / (n * tau2 + delta)
            if tau2 > 0
            else np.full_like(gamma_hat, gamma_bar)
        )
        delta_new = (
            np.full_like(delta, float(np.mean(delta_hat)))
            if not np.isfinite(a)
            else (b + 0.5 * sum_sq(gamma_new)) / (n / 2 + a - 1)
        )
        change = max(
            np.max(np.abs(gamma_new - gamma) / np.maximum(np.abs(gamma), 1e-12)),
            np.max(np.abs(delta_new - delta) / np.maximum(delta, 1e-12)),
        )
        gamma, delta = gamma_new, delta_new
        if change < tol:
            break
    return gamma, delta


def fit(
    data: pd.DataFrame, sites: Sequence[str], covariates: pd.DataFrame | None = None, *, eb: bool = True
) -> dict[str, Any]:
    """Fit ComBat to ``data`` (observations x features, NaN = missing) with one site label per row and
    optional biological covariates (columns such as age and sex) to preserve. Returns the model."""
    sites = np.asarray(sites, dtype=str)
    covariates = covariates if covariates is not None else pd.DataFrame(index=data.index)
    if len(sites) != len(data) or len(covariates) != len(data):
        raise MsqmriError("harmonisation: sites, covariates and data have different numbers of rows")
    levels = sorted(np.unique(sites))
    spec, notes = _covariate_spec(covariates.reset_index(drop=True), sites)
    cov = _covariate_matrix(covariates.reset_index(drop=True), spec)
    features: dict[str, Any] = {}
    standardised: dict[str, dict[str, np.ndarray]] = {site: {} for site in levels}
    for name in data.columns:
        y = data[name].to_numpy(float)
        ok = np.isfinite(y)
        counts = {site: int(np.sum(ok & (sites == site))) for site in levels}
        present = [site for site in levels if counts[site] >= MIN_PER_SITE]
        if len(present) < 2:
            notes.append(f"feature {name} not harmonised: fewer than two sites with {MIN_PER_SITE}+ observations")
            continue
        rows = ok & np.isin(sites, present)
        site_design = (sites[rows, None] == np.array(present)[None, :]).astype(float)
        design = np.hstack([site_design, cov[rows]])
        coef, *_ = np.linalg.lstsq(design, y[rows], rcond=None)
        weights = site_design.sum(0) / rows.sum()
        grand_mean = float(weights @ coef[: len(present)])
        residual = y[rows] - design @ coef
        var_pooled = float(np.mean(residual**2))
        if var_pooled <= 0:
            notes.append(f"feature {name} not harmonised: no residual variance")
            continue
        s = (y[rows] - grand_mean - cov[rows] @ coef[len(present) :]) / np.sqrt(var_pooled)
        for site in present:
            standardised[site][name] = s[sites[rows] == site]
        features[name] = {
            "grand_mean": grand_mean,
            "var_pooled": var_pooled,
            "beta": [float(v) for v in coef[len(present) :]],
            "sites": {},
        }
    for site in levels:
        names = list(standardised[site])
        s = [standardised[site][n] for n in names]
        gamma_hat = np.array([np.mean(v) for v in s])
        delta_hat = np.array([np.var(v, ddof=1) for v in s])
        gamma, delta = _shrink(s, gamma_hat, delta_hat, eb)
        for n, g, d in zip(names, gamma, delta, strict=True):
            features[n]["sites"][site] = {"gamma": float(g), "delta": float(max(d, 1e-12))}
    return {
        "version": MODEL_VERSION,
        "method": "ComBat" + (" (empirical Bayes)" if eb else ""),
        "eb": eb,
        "sites": levels,
        "covariates": spec,
        "features": features,
        "notes": notes,
    }


def apply_model(
    model: dict[str, Any], data: pd.DataFrame, sites: Sequence[str], covariates: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Harmonise ``data`` with a fitted model. Sites the model knows use its saved effects; a new site's
    effects are estimated from ``data`` against the saved reference (grand mean, covariate effects and
    pooled variance) with the same empirical-Bayes shrinkage. Features the model does not cover are
    returned unchanged."""
    sites = np.asarray(sites, dtype=str)
    covariates = covariates if covariates is not None else pd.DataFrame(index=data.index)
    _require_columns(covariates, list(model["covariates"]), "covariates")
    cov = _covariate_matrix(covariates.reset_index(drop=True), model["covariates"])
    names = [n for n in data.columns if n in model["features"]]
    standard = {}
    for name in names:
        feature = model["features"][name]
        y = data[name].to_numpy(float)
        mean = feature["grand_mean"] + cov @ np.asarray(feature["beta"], dtype=float)
        standard[name] = (mean, np.sqrt(feature["var_pooled"]), (y - mean) / np.sqrt(feature["var_pooled"]))
    effects = {name: dict(model["features"][name]["sites"]) for name in names}
    for site in sorted(set(sites) - set(model["sites"])):
        rows = sites == site
        usable = [n for n in names if np.sum(np.isfinite(standard[n][2][rows])) >= MIN_PER_SITE]
        s = [standard[n][2][rows][np.isfinite(standard[n][2][rows])] for n in usable]
        gamma, delta = _shrink(
            s, np.array([np.mean(v) for v in s]), np.array([np.var(v, ddof=1) for v in s]), model["eb"]
        )
        for n, g, d in zip(usable, gamma, delta, strict=True):
            effects[n][site] = {"gamma": float(g), "delta": float(max(d, 1e-12))}
    out = data.copy()
    for name in names:
        mean, sd, s = standard[name]
        adjusted = out[name].to_numpy(float).copy()
        for site, effect in effects[name].items():
            rows = sites == site
            adjusted[rows] = sd * (s[rows] - effect["gamma"]) / np.sqrt(effect["delta"]) + mean[rows]
        out[name] = adjusted
    return out


#: the regional_metrics.tsv statistics that are harmonised (std, n_voxels and volume_ml are kept)
STATISTICS = ("mean", "median")
KEYS = ["participant_id", "session_id"]


def wide_table(regional: pd.DataFrame) -> pd.DataFrame:
    """regional_metrics.tsv (long) -> one row per session, one column per region:metric:statistic."""
    wide = regional.pivot_table(index=KEYS, columns=["region", "metric"], values=list(STATISTICS), dropna=False)
    wide.columns = [f"{region}:{metric}:{stat}" for stat, region, metric in wide.columns]
    return wide


def _adjust_regional(
    regional: pd.DataFrame,
    demographics: pd.DataFrame,
    adjust: Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], tuple[pd.DataFrame, dict[str, Any]]],
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Reshape ``regional`` to sessions x features, let ``adjust`` harmonise the sessions that have a site
    (given their sites and demographics rows), and reshape back with a ``site`` column."""
    sessionless = regional["session_id"].isna()
    regional = regional.assign(session_id=regional["session_id"].fillna(""))  # a NaN key would drop the row
    wide = wide_table(regional)
    info = demographics.set_index("participant_id").reindex(wide.index.get_level_values(0))
    info.index = wide.index
    known = info["site"].notna().to_numpy()
    harmonised = wide.copy()
    harmonised[known], model = adjust(wide[known], info["site"][known].astype(str).to_numpy(), info[known])
    if not known.all():
        model = {
            **model,
            "notes": [*model["notes"], f"{int((~known).sum())} session(s) without a site left as measured"],
        }
    long = harmonised.stack(future_stack=True).rename("value").reset_index()
    long[["region", "metric", "stat"]] = long["level_2"].str.split(":", expand=True)
    values = long.pivot_table(index=[*KEYS, "region", "metric"], columns="stat", values="value", dropna=False)
    table = regional.drop(columns=list(STATISTICS)).merge(values.reset_index(), on=[*KEYS, "region", "metric"])
    table.insert(2, "site", table["participant_id"].map(demographics.set_index("participant_id")["site"]))
    table["session_id"] = table["session_id"].replace("", None) if sessionless.any() else table["session_id"]
    return table[[*KEYS, "site", *regional.columns[2:]]], model


def _require_columns(frame: pd.DataFrame, names: Sequence[str], source: str) -> None:
    """A one-line error naming ``source`` when ``frame`` lacks any of the columns ``names``."""
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise MsqmriError(f"{source}: no column(s) {', '.join(missing)} for the harmonisation")


def _unharmonised(note: str, sites: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "version": MODEL_VERSION,
        "method": "ComBat",
        "eb": True,
        "sites": sorted(sites),
        "features": {},
        "covariates": {},
        "notes": [note],
    }


def harmonize_regional(
    regional: pd.DataFrame, demographics: pd.DataFrame, covariates: Sequence[str] = ("age", "sex")
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """ComBat over the sessions of ``regional`` (regional_metrics.tsv), with each participant's site and
    ``covariates`` from ``demographics`` (participant_id, site, age, sex). Returns the table with
    harmonised mean and median and a ``site`` column, and the fitted model. Sessions without a site
    are left as measured; with fewer than two sites nothing is adjusted (the model says why)."""
    if regional.empty:
        table = regional.assign(site=pd.Series(dtype=object))
        return table[[*KEYS, "site", *regional.columns[2:]]], _unharmonised("no regional metrics: nothing harmonised")

    def learn(wide: pd.DataFrame, sites: np.ndarray, info: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
        if len(set(sites)) < 2:
            return wide, _unharmonised("fewer than two sites: nothing harmonised", set(sites))
        model = fit(wide, sites, info[list(covariates)])
        return apply_model(model, wide, sites, info[list(covariates)]), model

    return _adjust_regional(regional, demographics, learn)


def apply_to_regional(model: dict[str, Any], regional: pd.DataFrame, demographics: pd.DataFrame) -> pd.DataFrame:
    """``regional`` (e.g. a new centre's regional_metrics.tsv) harmonised with a saved ``model``; sites the
    model has not seen are estimated against its reference (see :func:`apply_model`)."""
    covariates = list(model["covariates"])
    _require_columns(demographics, ["site", *covariates], "the participants table")
    return _adjust_regional(
        regional, demographics, lambda wide, sites, info: (apply_model(model, wide, sites, info[covariates]), model)
    )[0]


def write_harmonized(inputs: Mapping[str, str], outputs: Mapping[str, str], covariates: Sequence[str]) -> None:
    """The ``harmonize`` step: group/regional_metrics_harmonized.tsv and the ComBat model (JSON) from the
    ``regional`` metrics table, with each participant's site and ``covariates`` from the ``sessions`` table."""
    demographics = read_group_table(inputs["sessions"]).drop_duplicates("participant_id")
    _require_columns(demographics, covariates, inputs["sessions"])
    table, model = harmonize_regional(read_group_table(inputs["regional"]), demographics, covariates)
    save_tsv(table, outputs["table"])
    save_json(model, outputs["model"])


def apply_files(model: str, regional: str, participants: str, out: str) -> None:
    """:func:`apply_to_regional` from a saved model (JSON), a regional_metrics.tsv and a participants.tsv
    (participant_id, site and the model's covariates); writes the harmonised table."""
    saved = load_json(model)
    if "features" not in saved or "covariates" not in saved:
        raise MsqmriError(f"{model}: not an msqmri ComBat model")
    table = apply_to_regional(saved, read_group_table(regional), read_group_table(participants))
    save_tsv(table, out)

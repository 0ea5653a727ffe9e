"""ComBat harmonisation against a two-site phantom cohort with known scanner effects on MTR and FA."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from msqmri.cohort.harmonize import apply_model, fit, harmonize_regional
from msqmri.phantom.sites import SiteCohortSpec, SiteEffect, simulate

KEYS = ["participant_id", "session_id", "region", "metric"]
AFFECTED = [("nawm", "mtr"), ("gm", "mtr"), ("nawm", "fa"), ("gm", "fa")]


def site_measures(table: pd.DataFrame, truth: pd.DataFrame, people: pd.DataFrame, sites=("siteA", "siteB")):
    """Per region/metric: the mean |difference| between two sites' measurement functions (observed vs
    true value, a line per site) over the cohort's true values, and the disease effect (MS - HC,
    adjusted for age and sex) in true units (divided by the pooled observed-vs-true slope)."""
    t = table.drop(columns=["site"], errors="ignore").merge(truth, on=KEYS).merge(people, on="participant_id")
    rows = {}
    for (region, metric), g in t.groupby(["region", "metric"]):
        lines = {s: np.polyfit(gs["true"], gs["mean"], 1) for s, gs in g.groupby("site")}
        grid = np.quantile(g["true"], np.linspace(0.05, 0.95, 19))
        difference = np.mean(np.abs(np.polyval(lines[sites[1]], grid) - np.polyval(lines[sites[0]], grid)))
        X = np.column_stack([np.ones(len(g)), g["diagnosis"] == "MS", g["age"], g["sex"] == "M"]).astype(float)
        disease = np.linalg.lstsq(X, g["mean"].to_numpy(), rcond=None)[0][1]
        true_disease = np.linalg.lstsq(X, g["true"].to_numpy(), rcond=None)[0][1]
        slope = np.polyfit(g["true"], g["mean"], 1)[0]
        rows[(region, metric)] = {"difference": difference, "disease": disease / slope, "true_disease": true_disease}
    return pd.DataFrame(rows).T


def test_combat_removes_site_effects_and_keeps_disease_effect():
    observed, truth, people = simulate(SiteCohortSpec())
    harmonised, model = harmonize_regional(observed, people)
    before, after = site_measures(observed, truth, people), site_measures(harmonised, truth, people)
    print(pd.concat({"before": before, "after": after}, axis=1).to_string())
    assert set(model["covariates"]) == {"age", "sex"} and not model["notes"]
    for feature in AFFECTED:
        removed = 1 - after.loc[feature, "difference"] / before.loc[feature, "difference"]
        assert removed >= 0.8, (feature, removed)
        true_effect = after.loc[feature, "true_disease"]
        assert abs(after.loc[feature, "disease"] - true_effect) <= 0.12 * abs(true_effect) + 1e-3 * (
            feature[1] == "fa"
        ), feature
    # the table keeps its shape and columns, with the site added; std/n_voxels/volume_ml are untouched
    assert list(harmonised.columns) == ["participant_id", "session_id", "site", *observed.columns[2:]]
    merged = observed.merge(harmonised, on=KEYS, suffixes=("", "_h"))
    assert len(merged) == len(observed) and (merged["std"] == merged["std_h"]).all()
    # metrics without a site effect are left close to where they were (within a fifth of a subject SD)
    md = merged[merged["metric"] == "md"]
    assert np.median(np.abs(md["mean"] - md["mean_h"])) < 0.2 * 0.03e-3


def test_saved_model_harmonises_a_new_site():
    spec = SiteCohortSpec()
    observed, truth, people = simulate(spec)
    harmonised, model = harmonize_regional(observed, people)
    model = json.loads(json.dumps(model))  # the model round-trips through JSON
    new_spec = replace(spec, sites={"siteC": SiteEffect(mtr_add=5.0, mtr_mul=0.9, fa_add=-0.03, fa_mul=1.1)}, seed=7)
    new_obs, new_truth, new_people = simulate(new_spec)
    for frame in (new_obs, new_truth, new_people):
        frame["participant_id"] = frame["participant_id"].str.replace("sub-1", "sub-9")
    wide = new_obs.pivot_table(index=["participant_id", "session_id"], columns=["region", "metric"], values="mean")
    wide.columns = [f"{r}:{m}:mean" for r, m in wide.columns]
    info = new_people.set_index("participant_id").loc[wide.index.get_level_values(0)]
    adjusted = apply_model(model, wide, info["site"].to_numpy(), info[["age", "sex"]].reset_index(drop=True))
    # the reference is the harmonised cohort (both sites on the pooled scale), through the true values
    reference = harmonised.merge(truth, on=KEYS)
    for region, metric in AFFECTED:
        t_new = new_truth[(new_truth.region == region) & (new_truth.metric == metric)].set_index(
            ["participant_id", "session_id"]
        )["true"]
        r = reference[(reference.region == region) & (reference.metric == metric)]
        line_ref = np.polyfit(r["true"], r["mean"], 1)
        grid = np.quantile(t_new, np.linspace(0.05, 0.95, 19))
        gap = {}
        for name, values in (("raw", wide), ("harmonised", adjusted)):
            line = np.polyfit(t_new.loc[values.index], values[f"{region}:{metric}:mean"], 1)
            gap[name] = np.mean(np.abs(np.polyval(line, grid) - np.polyval(line_ref, grid)))
        print(region, metric, gap)
        assert gap["harmonised"] <= 0.2 * gap["raw"], (region, metric, gap)


def test_single_site_and_confounded_covariates():
    observed, _, people = simulate(SiteCohortSpec(per_site=6))
    one_site = people.assign(site="siteA")
    table, model = harmonize_regional(observed, one_site)
    assert model["features"] == {} and "fewer than two sites" in model["notes"][0]
    assert np.allclose(table.sort_values(KEYS)["mean"], observed.sort_values(KEYS)["mean"])
    # sex identical to site: not usable as a covariate (it would take the site effect with it)
    confounded = people.assign(sex=people["site"].map({"siteA": "F", "siteB": "M"}))
    _, model = harmonize_regional(observed, confounded)
    assert list(model["covariates"]) == ["age"]
    assert any("sex not used" in note for note in model["notes"])
    # missing site: those sessions stay as measured
    partial = people.assign(site=people["site"].where(people.index != 0))
    table, model = harmonize_regional(observed, partial)
    first = people["participant_id"][0]
    mine = table[table.participant_id == first].sort_values(KEYS)["mean"].to_numpy()
    assert np.allclose(mine, observed[observed.participant_id == first].sort_values(KEYS)["mean"])
    assert any("without a site" in note for note in model["notes"])


def test_fit_rejects_mismatched_rows_and_unknown_levels():
    data = pd.DataFrame({"f": np.arange(8.0)})
    with pytest.raises(Exception, match="different numbers of rows"):
        fit(data, ["a"] * 3)
    model = fit(data, ["a", "b"] * 4, pd.DataFrame({"sex": ["F", "M"] * 2 + ["M", "F"] * 2}))
    with pytest.raises(Exception, match="level"):
        apply_model(model, data, ["a", "b"] * 4, pd.DataFrame({"sex": ["X"] * 8}))


def test_sessionless_subjects_are_kept():
    observed, _, people = simulate(SiteCohortSpec(per_site=8, n_sessions=1))
    observed["session_id"] = None
    table, model = harmonize_regional(observed, people)
    assert len(table) == len(observed) and table["session_id"].isna().all() and model["features"]


def test_command_line_harmonises_a_later_centre(tmp_path, capsys):
    from msqmri.cli import main
    from msqmri.core.io import save_json, save_tsv

    observed, _, people = simulate(SiteCohortSpec(per_site=20))
    _, model = harmonize_regional(observed, people)
    save_json(model, tmp_path / "model.json")
    new_obs, _, new_people = simulate(SiteCohortSpec(per_site=10, sites={"siteC": SiteEffect(mtr_add=6.0)}, seed=3))
    save_tsv(new_obs, tmp_path / "regional.tsv")
    save_tsv(new_people, tmp_path / "participants.tsv")
    args = [str(tmp_path / name) for name in ("model.json", "regional.tsv", "participants.tsv", "out.tsv")]
    assert main(["harmonize", *args]) == 0
    out = pd.read_csv(tmp_path / "out.tsv", sep="\t")
    nawm_mtr = out[(out.region == "nawm") & (out.metric == "mtr")]["mean"].mean()
    raw = new_obs[(new_obs.region == "nawm") & (new_obs.metric == "mtr")]["mean"].mean()
    assert raw - nawm_mtr > 4.0 and (out.site == "siteC").all()  # most of the +6 pu offset is gone
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["harmonize", str(tmp_path / "bad.json"), *args[1:]]) == 1
    assert main(["harmonize", args[0], str(tmp_path / "missing.tsv"), *args[2:]]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("msqmri: error:")]
    assert len(errors) == 2 and "bad.json" in errors[0] and "missing.tsv: file not found" in errors[1]

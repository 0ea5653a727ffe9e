"""ComBat harmonisation: msqmri's in-house empirical-Bayes ComBat against neuroHarmonize, the maintained
library, on a simulated two-site cohort with known scanner effects on MTR and FA.

    python benchmarks/harmonize.py [--per-site 500] [--peer-python PATH]

neuroHarmonize pins numpy < 2 and pandas < 3, so it cannot share msqmri's environment; give the Python
of a separate environment that has it (e.g. ``python -m venv nh && nh/bin/pip install "numpy<2"
"pandas<3" neuroHarmonize``) and the same table is harmonised there, in the same run. Printed: time
of each, the largest difference between their harmonised values (in units of each feature's SD),
and for msqmri the share of the site difference removed and the disease effect kept (as in
tests/test_harmonize.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from msqmri.cohort.harmonize import apply_model, fit, harmonize_regional, wide_table
from msqmri.phantom.sites import SiteCohortSpec, simulate

PEER = """
import sys, time, json
import pandas as pd
from neuroHarmonize import harmonizationLearn
data = pd.read_csv(sys.argv[1], index_col=[0, 1])
covars = pd.read_csv(sys.argv[2])
start = time.perf_counter()
_, adjusted = harmonizationLearn(data.to_numpy(), covars)
elapsed = time.perf_counter() - start
pd.DataFrame(adjusted, index=data.index, columns=data.columns).to_csv(sys.argv[3])
print(json.dumps({"seconds": elapsed}))
"""


def site_difference(table: pd.DataFrame, truth: pd.DataFrame) -> pd.Series:
    """Mean |difference| between the two sites' observed-vs-true lines, per region:metric."""
    merged = table.drop(columns=["site"], errors="ignore").merge(
        truth, on=["participant_id", "session_id", "region", "metric"]
    )
    site = merged["participant_id"].str[4]
    out = {}
    for (region, metric), rows in merged.groupby(["region", "metric"]):
        grid = np.quantile(rows["true"], np.linspace(0.05, 0.95, 19))
        lines = [np.polyfit(rows["true"][site == s], rows["mean"][site == s], 1) for s in ("1", "2")]
        out[f"{region}:{metric}"] = float(np.mean(np.abs(np.polyval(lines[1], grid) - np.polyval(lines[0], grid))))
    return pd.Series(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-site", type=int, default=500)
    parser.add_argument("--peer-python", help="Python of an environment with neuroHarmonize")
    args = parser.parse_args()
    observed, truth, people = simulate(SiteCohortSpec(per_site=args.per_site))
    start = time.perf_counter()
    harmonised, model = harmonize_regional(observed, people)
    table_seconds = time.perf_counter() - start
    before, after = site_difference(observed, truth), site_difference(harmonised, truth)
    wide = wide_table(observed)
    info = people.set_index("participant_id").loc[wide.index.get_level_values(0)]
    start = time.perf_counter()  # the same work as the peer's call: fit and adjust a sessions x features matrix
    apply_model(
        fit(wide, info["site"].to_numpy(), info[["age", "sex"]]), wide, info["site"].to_numpy(), info[["age", "sex"]]
    )
    ours_seconds = time.perf_counter() - start
    print(
        f"cohort: 2 sites x {args.per_site} participants x 2 sessions = {len(wide)} sessions, {wide.shape[1]} features"
    )
    rows = [("msqmri ComBat (EB, age+sex)", ours_seconds, f"whole long-table call {table_seconds:.3f} s")]
    if args.peer_python:
        with tempfile.TemporaryDirectory() as tmp:
            data, covars, result = (Path(tmp) / name for name in ("data.csv", "covars.csv", "out.csv"))
            wide.to_csv(data)
            pd.DataFrame(
                {
                    "SITE": info["site"].to_numpy(),
                    "age": info["age"].to_numpy(),
                    "sex": (info["sex"] == "M").astype(float).to_numpy(),
                }
            ).to_csv(covars, index=False)
            script = Path(tmp) / "peer.py"
            script.write_text(PEER)
            output = subprocess.run(
                [args.peer_python, str(script), str(data), str(covars), str(result)],
                capture_output=True,
                text=True,
                check=True,
            )
            peer_seconds = json.loads(output.stdout.strip().splitlines()[-1])["seconds"]
            theirs = pd.read_csv(result, index_col=[0, 1])
        ours = wide_table(harmonised.drop(columns=["site"]))
        sd = wide.std()
        worst = float((np.abs(ours.to_numpy() - theirs.to_numpy()) / sd.to_numpy()).max())
        rows.append(("neuroHarmonize harmonizationLearn", peer_seconds, f"max |difference| {worst:.2e} SD"))
    print(f"\n{'method':<36}{'time':>10}  agreement")
    for name, seconds, note in rows:
        print(f"{name:<36}{seconds:>9.3f}s  {note}")
    if len(rows) == 2:
        print(f"speed ratio msqmri / neuroHarmonize: {rows[0][1] / rows[1][1]:.2f}")
    print(f"\n{'feature':<14}{'site difference before':>24}{'after':>12}{'removed':>10}")
    for feature in ("nawm:mtr", "gm:mtr", "nawm:fa", "gm:fa"):
        print(
            f"{feature:<14}{before[feature]:>24.4g}{after[feature]:>12.4g}{1 - after[feature] / before[feature]:>9.1%}"
        )
    print(f"\nmodel: {len(model['features'])} features, covariates {list(model['covariates'])}")


if __name__ == "__main__":
    main()

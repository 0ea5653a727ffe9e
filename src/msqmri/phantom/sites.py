"""A multi-site cohort of regional metrics with known scanner effects, for testing harmonisation.

Each simulated participant has true regional FA, MD, MTR and R2* (the phantom's tissue values,
plus between-subject variation, an age slope, and a disease effect in people with MS); each site
then measures ``observed = add + mul * (true + measurement noise)`` for MTR and FA, the additive
and multiplicative scanner effects ComBat models (Johnson 2007; Fortin 2017). Images are not
rendered: harmonisation acts on the regional table, and a cohort of hundreds of sessions is only
affordable at this level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from msqmri.phantom import tissues


@dataclass(frozen=True)
class SiteEffect:
    """Scanner effect of one site on MTR (pu) and FA: observed = add + mul * value."""

    mtr_add: float = 0.0
    mtr_mul: float = 1.0
    fa_add: float = 0.0
    fa_mul: float = 1.0


@dataclass(frozen=True)
class SiteCohortSpec:
    """What to simulate: participants per site (half with MS), sessions each, effects."""

    sites: dict[str, SiteEffect] = field(
        default_factory=lambda: {
            "siteA": SiteEffect(),
            "siteB": SiteEffect(mtr_add=-10.0, mtr_mul=1.2, fa_add=0.05, fa_mul=0.8),
        }
    )
    per_site: int = 100
    n_sessions: int = 2
    ms_fraction: float = 0.5
    #: disease effect (MS minus healthy) per region on the true value, by metric
    disease: dict[str, dict[str, float]] = field(
        default_factory=lambda: {"mtr": {"nawm": -2.5, "gm": -1.5}, "fa": {"nawm": -0.04, "gm": -0.01}}
    )
    seed: int = 0


#: true value of each region (phantom tissue) and its between-subject SD
REGIONS = {"nawm": "wm", "gm": "gm"}
SUBJECT_SD = {"mtr": 1.2, "fa": 0.02, "md": 0.03e-3, "r2star": 1.0}
NOISE_SD = {"mtr": 0.4, "fa": 0.006, "md": 0.01e-3, "r2star": 0.3}
AGE_SLOPE = {"mtr": -0.04, "fa": -0.0015, "md": 0.002e-3, "r2star": 0.05}  # per year


def simulate(spec: SiteCohortSpec = SiteCohortSpec()) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(regional_metrics-like table with observed values, the same table's true values, participants
    table with participant_id, site, age, sex and diagnosis)."""
    rng = np.random.default_rng(spec.seed)
    people, observed, truth = [], [], []
    for site_index, (site, effect) in enumerate(spec.sites.items()):
        for k in range(spec.per_site):
            pid = f"sub-{site_index + 1}{k + 1:03d}"
            ms = k < round(spec.ms_fraction * spec.per_site)
            age = float(rng.uniform(20, 60))
            people.append(
                {
                    "participant_id": pid,
                    "site": site,
                    "age": round(age, 1),
                    "sex": str(rng.choice(["F", "M"])),
                    "diagnosis": "MS" if ms else "HC",
                }
            )
            base = {
                (region, metric): _true_value(tissue, metric, region, age, ms, spec) + rng.normal(0, SUBJECT_SD[metric])
                for region, tissue in REGIONS.items()
                for metric in SUBJECT_SD
            }
            for ses in range(spec.n_sessions):
                for (region, metric), value in base.items():
                    measured = value + rng.normal(0, NOISE_SD[metric])
                    if metric in ("mtr", "fa"):
                        measured = getattr(effect, f"{metric}_add") + getattr(effect, f"{metric}_mul") * measured
                    row = {
                        "participant_id": pid,
                        "session_id": f"ses-{ses + 1:02d}",
                        "region": region,
                        "metric": metric,
                    }
                    observed.append(
                        {
                            **row,
                            "mean": measured,
                            "median": measured,
                            "std": SUBJECT_SD[metric],
                            "n_voxels": 1000,
                            "volume_ml": 1.0,
                        }
                    )
                    truth.append({**row, "true": value})
    return pd.DataFrame(observed), pd.DataFrame(truth), pd.DataFrame(people)


def _true_value(tissue: str, metric: str, region: str, age: float, ms: bool, spec: SiteCohortSpec) -> float:
    value = getattr(tissues.TISSUES[tissues.INDEX[tissue]], metric) + AGE_SLOPE[metric] * (age - 40.0)
    return value + (spec.disease.get(metric, {}).get(region, 0.0) if ms else 0.0)

"""Each subject's baseline profile: the MRI measures at the first session that the MAGNIMS guidelines list as
carrying prognostic value (Wattjes et al., Nat Rev Neurol 2015; Wattjes et al., Lancet Neurol 2021): T2 lesion
count and volume, infratentorial (brainstem and cerebellar) lesions, contrast-enhancing lesions, black holes and the
normalised brain volume. It is a profile, not a prediction: no risk is computed from it."""

from __future__ import annotations

import pandas as pd

PROGNOSIS_COLUMNS = (
    "participant_id",
    "session_id",
    "acq_time",
    "n_lesions",
    "lesion_volume_ml",
    "n_periventricular",
    "n_juxtacortical",
    "n_infratentorial",
    "n_brainstem",
    "n_cerebellar",
    "n_cel",
    "cel_volume_ml",
    "n_black_holes",
    "black_hole_volume_ml",
    "normalized_brain_volume_ml",
)


def baseline_profiles(sessions: pd.DataFrame, counts: pd.DataFrame, volumes: pd.DataFrame) -> pd.DataFrame:
    """One row per subject: its first session (``sessions`` are in time order, as sessions.tsv is) with that
    session's lesion counts and normalised brain volume (``n/a`` where a table has no row for it)."""
    keys = ["participant_id", "session_id"]
    first = sessions.drop_duplicates("participant_id")[[*keys, "acq_time"]]
    brain = volumes[[*keys, "normalized_brain_volume_ml"]]  # the lesion volume is the counts' (same mask)
    table = first.merge(counts, on=keys, how="left").merge(brain, on=keys, how="left")
    return table.reindex(columns=list(PROGNOSIS_COLUMNS))

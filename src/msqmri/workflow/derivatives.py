"""BIDS-Derivatives metadata of the output dataset."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from msqmri import __version__

BIDS_VERSION = "1.10.0"


def dataset_description(bids_dir: str | os.PathLike[str], version: str = __version__) -> dict[str, Any]:
    """The ``dataset_description.json`` of an msqmri derivative of the raw dataset ``bids_dir``."""
    return {
        "Name": "msqmri derivatives",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "msqmri",
                "Version": version,
                "Description": "Longitudinal quantitative MRI of multiple sclerosis",
            }
        ],
        "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri()}],
    }

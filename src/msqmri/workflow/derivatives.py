"""BIDS-Derivatives metadata of the output dataset."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from msqmri import __version__
from msqmri.core.io import save_json

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


def write_dataset_description(inputs: Mapping[str, str], outputs: Mapping[str, str], bids_dir: str) -> None:
    """The ``dataset_description`` step."""
    save_json(dataset_description(bids_dir), outputs["description"])

"""Dataset-level outputs: BIDS-Derivatives metadata, the sessions table, protocol compliance, MAGNIMS monitoring
flags and ComBat harmonisation of the regional metrics."""

from __future__ import annotations

import os
from typing import Any

from msqmri.workflow import layout
from msqmri.workflow.jobs import Job
from msqmri.workflow.step import Input, Param, Report, Step


def protocol_acquisitions(job: Job) -> list[dict[str, Any]]:
    """The structural acquisitions (T1w, FLAIR) of every session with their JSON sidecars (None when absent)."""
    records = []
    for session in job.run.dataset.sessions():
        for modality, image in (("T1w", session.t1w), ("FLAIR", session.flair)):
            if image is not None:
                sidecar = session.sidecar(image)
                records.append(
                    {
                        "participant_id": session.participant_id,
                        "session_id": session.session_id,
                        "modality": modality,
                        "image": str(image),
                        "sidecar": str(sidecar) if sidecar is not None else None,
                    }
                )
    return records


STEPS = (
    Step(
        name="dataset_description",
        scope="dataset",
        call="msqmri.workflow.derivatives:write_dataset_description",
        local=True,
        doc="The derivative dataset's dataset_description.json (BIDS-Derivatives)",
        inputs={},
        outputs={"description": layout.DATASET_DESCRIPTION},
        params={"bids_dir": Param("the raw BIDS dataset", job=lambda job: os.path.abspath(job.config["bids_dir"]))},
        wiring=lambda job: {},
    ),
    Step(
        name="sessions_table",
        scope="dataset",
        call="msqmri.cohort.tables:write_sessions_table",
        local=True,
        doc="group/sessions.tsv, one row per subject-session: dates, inputs chosen, demographics",
        inputs={
            "checks": Input("every session's input check (CheckInputs.check)", many=True),
            "summaries": Input("every session's T1w summary", many=True),
        },
        outputs={"table": layout.SESSIONS_TABLE},
        params={
            "demographics": Param(
                "participants.tsv fields by participant",
                job=lambda job: {s.participant_id: s.demographics() for s in job.run.dataset.subjects},
            )
        },
        wiring=lambda job: {
            "checks": job.every_session(layout.INPUT_CHECK),
            "summaries": job.every_session(layout.T1W_SUMMARY),
        },
    ),
    Step(
        name="protocol_compliance",
        scope="dataset",
        call="msqmri.cohort.protocol:write_compliance",
        local=True,
        doc="group/protocol_compliance.tsv: each structural acquisition against the MAGNIMS protocol, and scanner "
        "or protocol changes between a subject's sessions",
        inputs={"files": Input("the T1w and FLAIR images and sidecars (reruns when one changes)", many=True)},
        outputs={"table": layout.PROTOCOL_TABLE},
        params={
            "acquisitions": Param(
                "(participant_id, session_id, modality, image, sidecar) records", job=protocol_acquisitions
            )
        },
        reports=(Report("table", "protocol.rst", "Multi-centre"),),
        wiring=lambda job: {
            "files": [r[key] for r in protocol_acquisitions(job) for key in ("image", "sidecar") if r[key]]
        },
    ),
    Step(
        name="monitoring_flags",
        scope="dataset",
        call="msqmri.cohort.monitoring:write_flags",
        local=True,
        doc="group/monitoring_flags.tsv: MAGNIMS monitoring flags per session pair",
        inputs={
            key: Input(f"group/{os.path.basename(path)}")
            for key, path in (
                ("pbvc", layout.PBVC_TABLE),
                ("activity", layout.LESION_ACTIVITY_TABLE),
                ("sessions", layout.SESSIONS_TABLE),
                ("compliance", layout.PROTOCOL_TABLE),
            )
        },
        outputs={"table": layout.MONITORING_TABLE},
        reports=(Report("table", "monitoring.rst", "Monitoring"),),
        wiring=lambda job: job.outs(
            {
                "pbvc": layout.PBVC_TABLE,
                "activity": layout.LESION_ACTIVITY_TABLE,
                "sessions": layout.SESSIONS_TABLE,
                "compliance": layout.PROTOCOL_TABLE,
            }
        ),
    ),
    Step(
        name="harmonize",
        scope="dataset",
        call="msqmri.cohort.harmonize:write_harmonized",
        local=True,
        doc="ComBat harmonisation of the regional metrics across sites, and the saved model",
        inputs={"regional": Input("group/regional_metrics.tsv"), "sessions": Input("group/sessions.tsv")},
        outputs={"table": layout.HARMONIZED_TABLE, "model": layout.HARMONIZATION_MODEL},
        params={"covariates": Param("covariates ComBat preserves", ["age", "sex"], config="harmonize_covariates")},
        reports=(Report("table", "harmonize.rst", "Multi-centre"),),
        wiring=lambda job: job.outs({"regional": layout.REGIONAL_METRICS_TABLE, "sessions": layout.SESSIONS_TABLE}),
    ),
)

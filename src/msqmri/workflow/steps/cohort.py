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


#: the group tables the monitoring flags are read from
MONITORING_TABLES = {
    "pbvc": layout.PBVC_TABLE,
    "activity": layout.LESION_ACTIVITY_TABLE,
    "sessions": layout.SESSIONS_TABLE,
    "compliance": layout.PROTOCOL_TABLE,
    "counts": layout.LESION_COUNTS_TABLE,
}
#: the group tables the treatment response and the prognostic profile are read from
RESPONSE_TABLES = {
    "sessions": layout.SESSIONS_TABLE,
    "activity": layout.LESION_ACTIVITY_TABLE,
    "changes": layout.LESION_CHANGES_TABLE,
    "lesions": layout.LESIONS_TABLE,
    "cels": layout.ENHANCING_LESIONS_TABLE,
    "pbvc": layout.PBVC_TABLE,
}
PROGNOSIS_TABLES = {
    "sessions": layout.SESSIONS_TABLE,
    "counts": layout.LESION_COUNTS_TABLE,
    "volumes": layout.BRAIN_VOLUMES_TABLE,
}

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
        inputs={key: Input(f"group/{os.path.basename(path)}") for key, path in MONITORING_TABLES.items()},
        outputs={"table": layout.MONITORING_TABLE},
        params={
            "tolerance_days": Param(
                "scheduling tolerance (days) of the 3-12 month interval", 31.0, config="interval_tolerance_days"
            )
        },
        reports=(Report("table", "monitoring.rst", "Monitoring"),),
        wiring=lambda job: job.outs(MONITORING_TABLES),
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
    Step(
        name="treatment_response",
        scope="dataset",
        call="msqmri.cohort.tables:write_treatment_response",
        local=True,
        doc="group/treatment_response.tsv: per subject and treatment year, activity against the reference scan and "
        "the Rio, modified Rio and MAGNIMS scores, NEDA-3 and NEDA-4",
        inputs={name: Input(f"group/{os.path.basename(path)}") for name, path in RESPONSE_TABLES.items()},
        outputs={"table": layout.TREATMENT_RESPONSE_TABLE},
        reports=(Report("table", "treatment_response.rst", "Monitoring"),),
        wiring=lambda job: job.outs(RESPONSE_TABLES),
    ),
    Step(
        name="prognosis",
        scope="dataset",
        call="msqmri.cohort.tables:write_prognosis",
        local=True,
        doc="group/prognosis.tsv: each subject's baseline lesion load, infratentorial lesions, CEL, black holes and "
        "normalised brain volume",
        inputs={name: Input(f"group/{os.path.basename(path)}") for name, path in PROGNOSIS_TABLES.items()},
        outputs={"table": layout.PROGNOSIS_TABLE},
        wiring=lambda job: job.outs(PROGNOSIS_TABLES),
    ),
)

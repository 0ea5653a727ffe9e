"""Self-contained HTML QC reports: one per subject and one for the cohort.

Every figure is embedded as a base64 PNG and the style and the small table-sorting script are
inline, so a report opens from disk in any browser with no server and no network. The cohort
report flags outliers by the modified z-score (|z| > 3.5, median and MAD; Iglewicz & Hoaglin
1993) of each subject's measures against the cohort, next to the MAGNIMS monitoring flags and
the protocol compliance of its acquisitions.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from msqmri import __version__
from msqmri.anat import template
from msqmri.cohort.tables import read_group_table
from msqmri.core.io import MsqmriError, atomic_path, load_nifti, save_text
from msqmri.core.registration import ants_image
from msqmri.lesions.regions import WM_LABEL
from msqmri.qc.plots import cohort_pbvc, focus_views, longitudinal, mosaic, spread

OUTLIER_Z = 3.5
#: cohort measures screened for outliers: (table, column or region:metric, label)
SCREENED = (
    ("volumes", "normalized_brain_volume_ml", "normalised brain volume"),
    ("volumes", "lesion_volume_ml", "lesion volume"),
    ("pbvc", "pbvc_per_year", "annualised PBVC"),
    ("regional", "nawm:mtr", "NAWM MTR"),
    ("regional", "nawm:fa", "NAWM FA"),
    ("regional", "nawm:md", "NAWM MD"),
    ("regional", "nawm:r2star", "NAWM R2*"),
)
#: per-session maps shown with the T1w tissue edges over them: key -> (title, display range or None)
MAPS = {
    "flair": ("FLAIR (registered to T1w)", None),
    "fa": ("FA", (0.0, 1.0)),
    "md": ("MD", None),
    "mtr": ("MTR (pu)", (0.0, 60.0)),
    "r2star": ("R2* (1/s)", (0.0, 60.0)),
}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}h3{font-size:1em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3;cursor:pointer}td:first-child,th:first-child{text-align:left}
.flag{background:#fde2e1}.caution{background:#fff3cd}.ok{background:#e6f4ea}
img{max-width:100%;display:block;margin:.3em 0}.note{color:#666;font-size:.85em}
"""  # noqa: E501 - the stylesheet as the page carries it
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.from(body.rows), asc = th.dataset.order !== 'asc';
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent, nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
      th.dataset.order = asc ? 'asc' : 'desc';
    });
  });
});
window.addEventListener('load', function () {
  var images = Array.from(document.images);
  document.body.dataset.images = images.length + '/' + images.filter(function (i) { return i.naturalWidth > 0; }).length;
  document.body.dataset.ready = 'yes';
});
"""  # noqa: E501 - the script as the page carries it


def page(title: str, body: Sequence[str]) -> str:
    """A complete HTML document with the inline style and script."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
        + "\n".join(body)
        + f'\n<p class="note">msqmri {__version__}</p><script>{SCRIPT}</script></body></html>\n'
    )


def figure(png: bytes, caption: str) -> str:
    """An embedded PNG with its caption."""
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"><figcaption>{alt}</figcaption></figure>'


def table(frame: pd.DataFrame, highlight: str | None = None, escape: bool = True) -> str:
    """A sortable HTML table (missing values as n/a); rows whose ``highlight`` column is set are shaded.
    ``escape=False`` keeps markup (links) that the caller has built from escaped text."""
    if frame.empty:
        return '<p class="note">none</p>'
    out = frame.to_html(
        index=False, na_rep="n/a", classes="sortable", border=0, escape=escape, float_format=lambda v: f"{v:.4g}"
    )
    if highlight is not None:
        rows = out.split("<tr>")
        marks = frame[highlight].map(lambda v: pd.notna(v) and v not in ("", "no", "ok", False))
        for k, flagged in enumerate(marks, start=1):  # rows[0] holds the header (its <tr> has a style)
            if flagged:
                rows[k] = rows[k].replace("<td>", '<td class="flag">', 1)
        out = "<tr>".join(rows)
    return f'<div style="overflow-x:auto">{out}</div>'


def _ras(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Array data reoriented to RAS (closest canonical) for display."""
    return np.asarray(nib.as_closest_canonical(nib.Nifti1Image(data, affine)).dataobj, dtype=np.float32)


def _canonical(path: str | os.PathLike[str], reference: nib.Nifti1Image | None = None) -> np.ndarray:
    """An image's data in RAS orientation, checked to share ``reference``'s grid."""
    img, data = load_nifti(path, allow_empty=True)
    if reference is not None and (
        img.shape[:3] != reference.shape[:3] or not np.allclose(img.affine, reference.affine, atol=1e-3)
    ):
        raise MsqmriError(f"{path}: not on the grid of the session's T1w")
    return _ras(data, img.affine)


def session_figures(files: Mapping[str, str], label: str) -> list[str]:
    """The session's mosaics: T1w with brain mask and tissue labels; the MNI template's edges warped onto
    the T1w; lesion labels on the FLAIR (or T1w); each quantitative map with the T1w white-matter and
    brain edges over it (registration checks)."""
    reference = nib.load(files["t1w"])
    t1w = _canonical(files["t1w"])
    mask = _canonical(files["brain_mask"], reference) > 0
    dseg = _canonical(files["dseg"], reference)
    lesions = _canonical(files["lesions"], reference)
    edges = [((dseg == WM_LABEL) | (lesions > 0), "red"), (mask, "cyan")]
    out = [
        figure(
            mosaic(
                t1w, mask, overlay=dseg, overlay_range=(0, 3), cmap="viridis", alpha=0.35, contours=[(mask, "cyan")]
            ),
            f"{label}: bias-corrected T1w, tissue labels (CSF/GM/WM) and brain mask (cyan) over the whole field of "
            "view (the coronal and sagittal slices show the neck and face: a leak into them, the dura or the "
            "sinuses shows at a glance)",
        ),
    ]
    like = ants_image(np.zeros(reference.shape[:3], np.float32), reference.affine)
    prior = {
        name: _ras(template.warped(name, like, files["from_template"]), reference.affine) > 0.5
        for name in ("brain", "wm")
    }
    out.append(
        figure(
            mosaic(t1w, mask, contours=[(prior["wm"], "magenta"), (prior["brain"], "yellow")]),
            f"{label}: MNI template registration: the template's white matter (magenta) and brain "
            "(yellow) edges warped onto the T1w",
        )
    )
    base = _canonical(files["flair"], reference) if "flair" in files else t1w
    out.append(
        figure(
            mosaic(
                base,
                mask,
                overlay=lesions,
                overlay_range=(0, max(lesions.max(), 1)),
                labels=True,
                alpha=0.9,
                contours=[(lesions > 0, "red")],
                views=focus_views(mask, lesions > 0),
            ),
            f"{label}: lesion labels on the {'FLAIR' if 'flair' in files else 'T1w'} "
            f"({int(len(np.unique(lesions)) - 1)} lesions)",
        )
    )
    if "enhancement" in files:
        enhancement = _canonical(files["enhancement"], reference)
        cels = _canonical(files["cel"], reference) > 0
        out.append(
            figure(
                mosaic(
                    np.clip(enhancement, -0.2, 0.8),
                    mask,
                    contours=[(cels, "yellow"), (lesions > 0, "red")],
                    views=focus_views(mask, cels if cels.any() else lesions > 0),
                ),
                f"{label}: gadolinium enhancement (post minus pre-contrast T1w, NAWM units) with the "
                f"contrast-enhancing lesions (yellow, {int(ndimage.label(cels)[1])}) and the T2 lesions (red)",
            )
        )
    for key, (title, limits) in MAPS.items():
        if key in files:
            data = _canonical(files[key], reference)
            lo, hi = limits or np.percentile(data[mask], (1, 99))
            out.append(
                figure(
                    mosaic(np.clip(data, lo, hi), mask, contours=edges),
                    f"{label}: {title} with the T1w white-matter (red) and brain (cyan) edges",
                )
            )
    return out


def pair_figures(files: Mapping[str, str], label: str) -> list[str]:
    """The pair's mosaics in halfway space: session registration (the earlier brain edge over the later
    T1w), SIENA edge displacement, lesion activity status and the FLAIR subtraction."""
    later = _canonical(files["image_to"])
    brain_from = _canonical(files["brain_from"]) > 0.5
    mask = brain_from | (_canonical(files["brain_to"]) > 0.5)
    out = [
        figure(
            mosaic(later, mask, contours=[(brain_from, "yellow")]),
            f"{label}: later T1w (halfway space) with the earlier session's brain edge (yellow)",
        )
    ]
    if "flow" in files:
        flow = _canonical(files["flow"])
        limit = float(np.percentile(np.abs(flow[flow != 0]), 99)) if np.any(flow) else 1.0
        out.append(
            figure(
                mosaic(
                    _canonical(files["image_from"]),
                    mask,
                    overlay=spread(flow),
                    overlay_range=(-limit, limit),
                    cmap="RdBu_r",
                    alpha=1.0,
                ),
                f"{label}: SIENA edge displacement (red outward, blue inward; +-{limit:.2f} mm)",
            )
        )
    status = _canonical(files["status"])
    views = focus_views(mask, status > 0)
    out.append(
        figure(
            mosaic(later, mask, overlay=status, overlay_range=(0, 5), cmap="tab10", views=views),
            f"{label}: lesion activity (1 new, 2 enlarging, 3 shrinking, 4 resolved, 5 stable)",
        )
    )
    if "subtraction" in files:
        difference = _canonical(files["subtraction"])
        window = float(np.percentile(np.abs(difference[mask]), 99)) or 1.0
        shown = np.where(ndimage.binary_dilation(mask, iterations=2), np.clip(difference, -window, window), -window)
        out.append(
            figure(
                mosaic(shown, mask, contours=[(status == 1, "red")], views=views),
                f"{label}: FLAIR subtraction (later - earlier) with new lesions outlined",
            )
        )
    return out


def _of(frame: pd.DataFrame, participant: str) -> pd.DataFrame:
    return frame[frame["participant_id"] == participant] if "participant_id" in frame else frame.iloc[0:0]


def subject_report(
    participant: str,
    sessions: Sequence[tuple[str, Mapping[str, str]]],
    pairs: Sequence[tuple[str, Mapping[str, str]]],
    tables: Mapping[str, pd.DataFrame],
    longitudinal_png: bytes,
) -> str:
    """One subject's report: monitoring flags, longitudinal plot, tables and the QC mosaics of every
    session and session pair (``sessions``/``pairs``: label and files by key)."""
    t = {name: _of(frame, participant) for name, frame in tables.items()}
    regional = t["regional"]
    if len(regional):
        regional = regional.pivot_table(index=["session_id", "region"], columns="metric", values="mean")
        regional = regional.rename_axis(columns=None).reset_index()
    body = [
        "<h2>MAGNIMS monitoring flags</h2>",
        table(t["flags"], highlight="flags"),
        '<p class="note">New/enlarging T2 lesions since the reference scan, annualised PBVC beyond -0.37 %/y '
        "(caution: pseudo-atrophy within 12 months of a treatment start), scan interval outside 3-12 months, "
        "scanner or protocol change (PBVC unreliable). Wattjes et al. 2021; De Stefano et al. 2016.</p>",
        "<h2>Protocol compliance</h2>",
        table(t["compliance"], highlight="issues"),
        "<h2>Longitudinal measures</h2>",
        figure(longitudinal_png, f"{participant}: trajectories with healthy/MS reference bands"),
        "<h3>Brain volumes</h3>",
        table(t["volumes"], highlight="qc_flag" if "qc_flag" in t["volumes"] else None),
        '<p class="note">qc_flag: the intracranial volume could not be estimated, so vscale and the normalised '
        "volume are n/a (icv); the brain mask was cut back to the registered template brain, or could not be "
        "checked against it because the template registration failed (brain_mask); "
        "qc_note says why. The session's other measures are still made.</p>",
        "<h3>Percentage brain volume change</h3>",
        table(t["pbvc"], highlight="qc_flag"),
        '<p class="note">qc_flag: forward and backward estimates disagree (forward_backward), the sessions\' '
        "self-calibrations differ (calibration), or many edges are not brain/CSF borders (edges): the two masks "
        "are not the same anatomy; check the mask over the whole head in the session mosaics.</p>",
        "<h3>Lesion activity</h3>",
        table(t["activity"]),
        "<h3>Lesion counts by location</h3>",
        table(t["counts"]),
        "<h3>Contrast-enhancing lesions</h3>",
        table(t.get("enhancing", EMPTY)),
        "<h3>Treatment response</h3>",
        table(t.get("response", EMPTY), highlight="active_3_or_more"),
        RESPONSE_NOTE,
        "<h3>Regional means (T1w space)</h3>",
        table(regional),
        "<h3>Lesions (persistent identities)</h3>",
        table(t["lesions"]),
        "<h2>Sessions</h2>",
    ]
    for label, files in sessions:
        body += [f"<h3>{html.escape(label)}</h3>", *session_figures(files, label)]
    if pairs:
        body.append("<h2>Session pairs (halfway space)</h2>")
    for label, files in pairs:
        body += [f"<h3>{html.escape(label)}</h3>", *pair_figures(files, label)]
    return page(f"msqmri QC report: {participant}", body)


def modified_z(values: pd.Series) -> pd.Series:
    """Modified z-score 0.6745 (x - median) / MAD (Iglewicz & Hoaglin 1993); 0 where the MAD is 0."""
    mad = float(np.median(np.abs(values - values.median())))
    return 0.6745 * (values - values.median()) / mad if mad > 0 else values * 0.0


def outliers(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Observations whose modified z-score against the cohort exceeds 3.5, per screened measure."""
    rows = []
    regional = tables["regional"]
    for name, column, label in SCREENED:
        frame = tables[name]
        if name == "regional":
            region, metric = column.split(":")
            frame = regional[(regional["region"] == region) & (regional["metric"] == metric)]
            column = "mean"
        values = pd.to_numeric(frame.get(column, pd.Series(dtype=float)), errors="coerce").dropna()
        if len(values) < 5:  # too few observations for a robust spread
            continue
        z = modified_z(values)
        for index in z[np.abs(z) > OUTLIER_Z].index:
            row = frame.loc[index]
            where = row.get("session_id") if "session_id" in frame else f"{row['session_from']} -> {row['session_to']}"
            rows.append(
                {
                    "participant_id": row["participant_id"],
                    "where": where,
                    "measure": label,
                    "value": float(values[index]),
                    "modified_z": round(float(z[index]), 2),
                }
            )
    return pd.DataFrame(rows, columns=["participant_id", "where", "measure", "value", "modified_z"])


def cohort_report(tables: Mapping[str, pd.DataFrame], figures: Sequence[str] = ()) -> str:
    """The cohort report: one row per subject (sessions, site, flags, outliers, protocol issues) linking
    to the subject reports, the outlier list, and cohort figures."""
    flagged = outliers(tables)
    rows = []
    for participant, sessions in tables["sessions"].groupby("participant_id", sort=False):
        flags = tables["flags"][tables["flags"]["participant_id"] == participant]
        compliance = tables["compliance"][tables["compliance"]["participant_id"] == participant]
        mine = flagged[flagged["participant_id"] == participant]
        name = html.escape(participant)
        flag_set = set("; ".join(flags["flags"].dropna()).split("; ")) - {""}
        rows.append(
            {
                "subject": f'<a href="../{name}.html">{name}</a>',
                "site": html.escape(str(sessions["site"].iloc[0])),
                "sessions": len(sessions),
                "monitoring flags": html.escape("; ".join(sorted(flag_set))),
                "protocol": "; ".join(sorted(set(compliance["status"]) - {"pass"})) or "pass",
                "outliers": html.escape("; ".join(sorted(set(mine["measure"])))),
            }
        )
    summary = pd.DataFrame(rows)
    attention = (summary["monitoring flags"] != "") | (summary["outliers"] != "") | (summary["protocol"] != "pass")
    summary["attention"] = np.where(attention, "yes", "no")
    body = [
        "<h2>Subjects</h2>",
        table(summary, highlight="attention", escape=False),
        '<p class="note">Outliers: modified z-score above 3.5 against the cohort (Iglewicz &amp; Hoaglin 1993). '
        "Protocol: status of the structural acquisitions (see group/protocol_compliance.tsv).</p>",
        "<h2>Outlying measures</h2>",
        table(flagged),
        "<h2>Monitoring flags</h2>",
        table(tables["flags"][tables["flags"]["flags"].notna()]),
        "<h2>Protocol issues</h2>",
        table(tables["compliance"][tables["compliance"]["status"] != "pass"]),
        "<h2>Treatment response</h2>",
        table(tables.get("response", EMPTY), highlight="active_3_or_more"),
        RESPONSE_NOTE,
        "<h2>Baseline prognostic profile</h2>",
        table(tables.get("prognosis", EMPTY)),
        *figures,
    ]
    return page("msqmri cohort QC report", body)


#: the group tables a report reads, by the names used above
TABLE_NAMES = (
    "sessions",
    "volumes",
    "pbvc",
    "regional",
    "lesions",
    "counts",
    "activity",
    "flags",
    "compliance",
    "enhancing",
    "response",
    "prognosis",
)
#: a table a report shows when the group run has none (tables of runs before it existed)
EMPTY = pd.DataFrame()
RESPONSE_NOTE = (
    '<p class="note">Per treatment year, against the reference scan (rebaseline: the first scan at least 6 months '
    "after the treatment start): new/enlarging T2 lesions and contrast-enhancing lesions counted once, relapses, "
    "confirmed EDSS progression; Rio score (Rio et al. 2009), modified Rio score (Sormani et al. 2013), MAGNIMS score "
    "(Sormani et al. 2016), NEDA-3 and NEDA-4 (Kappos et al. 2016); n/a where an input is missing.</p>"
)


def read_tables(paths: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """The group TSVs by name (see :data:`TABLE_NAMES`)."""
    return {name: read_group_table(paths[name]) for name in TABLE_NAMES}


def write_longitudinal_plot(inputs: Mapping[str, str], outputs: Mapping[str, str], participant_id: str) -> None:
    """The subject's longitudinal plot (PNG) from the group tables (``inputs`` by :data:`TABLE_NAMES`)."""
    t = {name: _of(frame, participant_id) for name, frame in read_tables(inputs).items()}
    png = longitudinal(
        t["sessions"], t["pbvc"], t["activity"], t["regional"], t["volumes"], t["lesions"], participant_id
    )
    with atomic_path(outputs["plot"]) as tmp:
        tmp.write_bytes(png)


def write_subject_report(
    inputs: Mapping[str, Any],
    outputs: Mapping[str, str],
    participant_id: str,
    files: tuple[Sequence[tuple[str, Mapping[str, str]]], Sequence[tuple[str, Mapping[str, str]]]],
) -> None:
    """``sub-<s>.html``: :func:`subject_report` from the subject's ``files`` (the label and files of each
    session and session pair), the group tables and the longitudinal ``plot`` in ``inputs``."""
    sessions, pairs = files
    with open(inputs["plot"], "rb") as fh:
        png = fh.read()
    save_text(subject_report(participant_id, sessions, pairs, read_tables(inputs), png), outputs["report"])


def write_cohort_report(inputs: Mapping[str, str], outputs: Mapping[str, str]) -> None:
    """``group/cohort_report.html`` from the group tables."""
    frames = read_tables(inputs)
    pbvc = figure(
        cohort_pbvc(frames["pbvc"], frames["sessions"]), "Annualised PBVC of every consecutive interval by site"
    )
    save_text(cohort_report(frames, [pbvc]), outputs["report"])

"""msqmri's processing steps as nipype interfaces, for users who build their own nipype workflows.

Each interface is a :class:`nipype.interfaces.base.SimpleInterface` around the same library function
the Snakemake rule calls: file inputs are traits, outputs are written into the node's working
directory under the derivative names of :mod:`msqmri.workflow.layout` (``stem`` gives the BIDS prefix, e.g.
``sub-01_ses-01``; a session pair's steps take ``participant_id``/``session_from``/``session_to`` instead,
e.g. ``sub-01``, ``ses-01``, ``ses-02``, and name their outputs ``sub-01_ses-01to02_...``), and every
output key of the step is an output trait. Each interface's ``rule`` is the Snakemake rule (and
``scripts/<rule>.py`` adapter) it mirrors. Example::

    from nipype import Node, Workflow
    from msqmri.interfaces import Structural, MTR
    structural = Node(Structural(t1w="sub-01_T1w.nii.gz", stem="sub-01"), name="structural")
    mtr = Node(MTR(mt_on=..., mt_off=..., stem="sub-01"), name="mtr")
    wf = Workflow("msqmri", base_dir="work")
    wf.connect(structural, "preproc", mtr, "t1w")
    wf.connect(structural, "brain_mask", mtr, "t1w_mask")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from nipype.interfaces.base import (
    BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, isdefined, traits,
)  # fmt: skip

from msqmri.workflow import layout
from msqmri.core.io import private_tempdir
from msqmri.lesions.components import MIN_SIZE_MM3
from msqmri.lesions.longitudinal import ENLARGING


def _output_spec(name: str, keys: Mapping[str, str]) -> type:
    """An output spec with one File trait per output key, defined in this module (nipype pickles results,
    so the class must be importable by name)."""
    spec = type(name, (TraitedSpec,), {"__module__": __name__, **{key: File(desc=key) for key in keys}})
    globals()[name] = spec
    return spec


class _SeedInputSpec(BaseInterfaceInputSpec):
    seed = traits.Int(1, usedefault=True, desc="seed of the randomised steps (ANTs sampling)")


class _StepInputSpec(_SeedInputSpec):
    stem = traits.Str(mandatory=True, desc="BIDS prefix of the outputs, e.g. sub-01_ses-01")


class _Step(SimpleInterface):
    """A step whose library function writes the outputs of one layout table (key -> path pattern)."""

    #: the Snakemake rule (and ``scripts/<rule>.py`` adapter) the step mirrors
    rule: ClassVar[str] = ""
    outputs_layout: Mapping[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.rule:  # a concrete step: one output trait per key of its layout table
            cls.output_spec = _output_spec(f"{cls.__name__}OutputSpec", cls.outputs_layout)

    def _wildcards(self) -> dict[str, str]:
        """Values of the layout patterns' wildcards: outputs go to the node's directory."""
        return {"sesdir": ".", "stem": self.inputs.stem}

    def _paths(self, cwd: str) -> dict[str, str]:
        paths = {}
        for key, pattern in self.outputs_layout.items():
            path = os.path.join(cwd, pattern.format(**self._wildcards()))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            paths[key] = os.path.normpath(path)
        return paths

    def _run_interface(self, runtime: Any) -> Any:
        paths = self._paths(runtime.cwd)
        with private_tempdir():
            self.run_step(paths)
        self._results.update(paths)
        return runtime

    def run_step(self, outputs: dict[str, str]) -> None:
        raise NotImplementedError

    def _files(self, *names: str) -> dict[str, str]:
        """The named file inputs that are set, as the library's input dict."""
        return {name: getattr(self.inputs, name) for name in names if getattr(self.inputs, name)}

    def _ids(self) -> dict[str, str | None]:
        subject, _, session = self.inputs.stem.partition("_")
        return {"participant_id": subject, "session_id": session or None}


class _StructuralInputSpec(_StepInputSpec):
    t1w = File(exists=True, mandatory=True, desc="raw T1w image")
    lesion = File(exists=True, desc="lesion mask in T1w space, or in FLAIR space with lesion_transform (optional)")
    lesion_transform = File(exists=True, desc="FLAIR -> T1w transform of a FLAIR-space lesion (FlairToT1w.transform)")
    inv2 = File(exists=True, desc="MP2RAGE INV2 magnitude beside a UNIT1 t1w, for its head mask (optional)")
    backend = traits.Enum("template", "deepbet", usedefault=True, desc="brain extraction backend")


class Structural(_Step):
    """N4 bias correction, brain extraction, tissue segmentation, MNI registration and SIENAX-like volumes
    (:func:`msqmri.anat.stage.run`)."""

    rule = "structural"
    input_spec = _StructuralInputSpec
    outputs_layout = layout.STRUCTURAL

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.anat.stage import run

        run(self.inputs.t1w, self.inputs.lesion or None, outputs, self._ids(), seed=self.inputs.seed,
            backend=self.inputs.backend, lesion_transform=self.inputs.lesion_transform or None,
            inv2_path=self.inputs.inv2 or None)  # fmt: skip


class _FlairToT1wInputSpec(_StepInputSpec):
    flair = File(exists=True, mandatory=True, desc="raw FLAIR image")
    t1w = File(exists=True, mandatory=True, desc="raw T1w image (as in the workflow; its grid is the output grid)")


class FlairToT1w(_Step):
    """Rigid FLAIR -> T1w registration (Mattes mutual information) and the FLAIR resampled onto the T1w grid
    (:func:`msqmri.core.registration.register_to_t1w`)."""

    rule = "flair_to_t1w"
    input_spec = _FlairToT1wInputSpec
    outputs_layout = layout.FLAIR_TO_T1W

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.core.registration import register_to_t1w

        register_to_t1w(self.inputs.flair, self.inputs.t1w, outputs["transform"], outputs["flair"],
                        seed=self.inputs.seed)  # fmt: skip


class _T1wRefInputSpec(_StepInputSpec):
    t1w = File(exists=True, mandatory=True, desc="bias-corrected T1w (Structural.preproc)")


class _T1wInputSpec(_T1wRefInputSpec):
    t1w_mask = File(exists=True, mandatory=True, desc="T1w brain mask (Structural.brain_mask)")


class _MTRInputSpec(_T1wInputSpec):
    mt_on = File(exists=True, mandatory=True, desc="MT-on image")
    mt_off = File(exists=True, mandatory=True, desc="MT-off image")


class MTR(_Step):
    """Magnetization transfer ratio on the MT-off grid and in T1w space (:func:`msqmri.qmri.stage.mtr`)."""

    rule = "mtr"
    input_spec = _MTRInputSpec
    outputs_layout = layout.MTR

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.qmri.stage import mtr

        mtr(self._files("mt_on", "mt_off", "t1w", "t1w_mask"), outputs, seed=self.inputs.seed)


class _R2starInputSpec(_T1wInputSpec):
    echoes = InputMultiObject(File(exists=True), mandatory=True, desc="MEGRE echoes in echo order (JSON sidecars beside them)")
    method = traits.Enum("wls", "arlo", "nlls", usedefault=True, desc="R2* fit")
    floor_snr = traits.Float(2.0, usedefault=True, desc="noise-floor multiple below which echoes are dropped")


class R2star(_Step):
    """R2*, T2*, S0 and fit residual on the MEGRE grid, R2* in T1w space (:func:`msqmri.qmri.stage.r2star`)."""

    rule = "r2star"
    input_spec = _R2starInputSpec
    outputs_layout = layout.R2STAR

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.qmri.stage import r2star

        r2star(self._files("t1w", "t1w_mask"), list(self.inputs.echoes), outputs, method=self.inputs.method,
               floor_snr=self.inputs.floor_snr, seed=self.inputs.seed)  # fmt: skip


class _DWIPreprocInputSpec(_StepInputSpec):
    dwi = File(exists=True, mandatory=True, desc="raw 4D DWI series")
    bval = File(exists=True, mandatory=True, desc="its b-values (.bval)")
    bvec = File(exists=True, mandatory=True, desc="its b-vectors (.bvec, FSL convention)")
    b0_series = InputMultiObject(File(exists=True), desc="b=0 series stored apart, same phase encoding (optional)")
    denoise = traits.Enum("none", "mppca", usedefault=True, desc="denoising before motion correction")
    motion_correction = traits.Bool(True, usedefault=True, desc="rigid motion correction with b-vector rotation")


class DWIPreproc(_Step):
    """Optional MP-PCA denoising (Veraart et al. 2016), motion correction to the mean b=0 with b-vector
    rotation (Leemans & Jones 2009), mean b=0 and its brain mask (:func:`msqmri.dwi.stage.preprocess`)."""

    rule = "dwi_preproc"
    input_spec = _DWIPreprocInputSpec
    outputs_layout = layout.DWI_PREPROC

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.dwi.stage import preprocess

        preprocess(self._files("dwi", "bval", "bvec", "b0_series"), outputs, denoise=self.inputs.denoise,
                   motion_correction=self.inputs.motion_correction)  # fmt: skip


class _DWIToT1wInputSpec(_T1wInputSpec):
    b0 = File(exists=True, mandatory=True, desc="mean b=0 (DWIPreproc.b0)")
    mask = File(exists=True, mandatory=True, desc="its brain mask (DWIPreproc.mask)")
    kind = traits.Enum("rigid", "affine", usedefault=True, desc="b=0 -> T1w transform")


class DWIToT1w(_Step):
    """Brain-masked mean b=0 -> T1w registration by Mattes mutual information
    (:func:`msqmri.dwi.stage.register_b0_to_t1w`)."""

    rule = "dwi_to_t1w"
    input_spec = _DWIToT1wInputSpec
    outputs_layout = layout.DWI_TO_T1W

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.dwi.stage import register_b0_to_t1w

        register_b0_to_t1w(self._files("b0", "mask", "t1w", "t1w_mask"), outputs["transform"], kind=self.inputs.kind,
                           seed=self.inputs.seed)  # fmt: skip


class _DTIFitInputSpec(_StepInputSpec):
    dwi = File(exists=True, mandatory=True, desc="preprocessed DWI series (DWIPreproc.dwi)")
    bval = File(exists=True, mandatory=True, desc="DWIPreproc.bval")
    bvec = File(exists=True, mandatory=True, desc="DWIPreproc.bvec (rotated by the motion correction)")
    mask = File(exists=True, mandatory=True, desc="b=0 brain mask (DWIPreproc.mask)")
    t1w_mask = File(exists=True, desc="T1w brain mask (Structural.brain_mask; with mask_source='t1w')")
    transform = File(exists=True, desc="b=0 -> T1w transform (DWIToT1w.transform; with mask_source='t1w')")
    method = traits.Enum("WLS", "NLLS", "RESTORE", usedefault=True, desc="tensor fit")
    #: the rule's ``params.mask`` (``mask`` is its b=0 mask input, as in the rule)
    mask_source = traits.Enum("b0", "t1w", usedefault=True, desc="fit in the b=0 mask or the T1w mask brought across")
    threads = traits.Int(1, usedefault=True, desc="threads of the fit")
    max_b = traits.Float(1500.0, usedefault=True, desc="fit on b=0 and the shells up to this b-value (s/mm^2)")


class DTIFit(_Step):
    """Diffusion tensor fit (Basser et al. 1994; WLS, NLLS or RESTORE with dipy) and FA, MD, AD, RD, V1
    and colour FA in DWI space (:func:`msqmri.dwi.stage.fit`)."""

    rule = "dti"
    input_spec = _DTIFitInputSpec
    outputs_layout = layout.DTI

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.dwi.stage import fit

        inputs = self._files("dwi", "bval", "bvec", "mask", "t1w_mask", "transform")
        if self.inputs.mask_source == "t1w" and not {"t1w_mask", "transform"} <= inputs.keys():
            raise ValueError("DTIFit: mask_source='t1w' needs t1w_mask and transform")
        fit(inputs, outputs, method=self.inputs.method, mask=self.inputs.mask_source, threads=self.inputs.threads,
            max_b=self.inputs.max_b)


class _DTIToT1wInputSpec(_T1wRefInputSpec):
    fa = File(exists=True, mandatory=True, desc="FA in DWI space (DTIFit.fa)")
    md = File(exists=True, mandatory=True, desc="MD in DWI space (DTIFit.md)")
    ad = File(exists=True, mandatory=True, desc="AD in DWI space (DTIFit.ad)")
    rd = File(exists=True, mandatory=True, desc="RD in DWI space (DTIFit.rd)")
    transform = File(exists=True, mandatory=True, desc="b=0 -> T1w transform (DWIToT1w.transform)")


class DTIToT1w(_Step):
    """FA, MD, AD and RD resampled onto the T1w grid through the b=0 -> T1w transform (linear)
    (:func:`msqmri.dwi.stage.to_t1w`)."""

    rule = "dti_to_t1w"
    input_spec = _DTIToT1wInputSpec
    outputs_layout = layout.DTI_T1W

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.dwi.stage import to_t1w

        to_t1w(self._files(*layout.DTI_SCALARS, "transform", "t1w"), outputs)


class _FlairNormalizationInputSpec(_StepInputSpec):
    flair = File(exists=True, mandatory=True, desc="FLAIR registered to the T1w (FlairToT1w.flair)")
    brain_mask = File(exists=True, mandatory=True, desc="T1w brain mask (Structural.brain_mask)")
    probseg_wm = File(exists=True, mandatory=True, desc="WM fraction (Structural.probseg_wm)")


class FlairNormalization(_Step):
    """The FLAIR after N4, divided by its local normal-appearing WM level
    (:func:`msqmri.lesions.stage.flair_normalization`)."""

    rule = "flair_normalization"
    input_spec = _FlairNormalizationInputSpec
    outputs_layout = layout.FLAIR_NORM

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import flair_normalization

        flair_normalization(self._files("flair", "brain_mask", "probseg_wm"), outputs)


class _TissueInputSpec(_T1wRefInputSpec):
    brain_mask = File(exists=True, mandatory=True, desc="T1w brain mask (Structural.brain_mask)")
    probseg_csf = File(exists=True, desc="CSF fraction (Structural.probseg_csf)")
    probseg_gm = File(exists=True, desc="GM fraction (Structural.probseg_gm)")
    probseg_wm = File(exists=True, desc="WM fraction (Structural.probseg_wm)")
    from_template = File(exists=True, desc="MNI -> T1w transform (Structural.from_template)")
    flair = File(exists=True, desc="normalised FLAIR (FlairNormalization.flair)")


#: the tissue inputs of the lesion steps
TISSUE_INPUTS = ("t1w", "brain_mask", "probseg_csf", "probseg_gm", "probseg_wm", "from_template", "flair")


class _LesionMaskInputSpec(_TissueInputSpec):
    lesion = File(exists=True, desc="user lesion mask in T1w space (or FLAIR space with lesion_transform)")
    lesion_transform = File(exists=True, desc="FLAIR -> T1w transform of a FLAIR-space lesion mask")
    min_size_mm3 = traits.Float(MIN_SIZE_MM3, usedefault=True, desc="smallest lesion kept (mm^3)")


class LesionMask(_Step):
    """The session's lesion mask: the user's, else the built-in FLAIR + T1w segmentation (the tissue inputs
    and the FLAIR), else empty (:func:`msqmri.lesions.stage.lesion_mask`)."""

    rule = "lesion_mask"
    input_spec = _LesionMaskInputSpec
    outputs_layout = layout.LESION_MASK

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import lesion_mask

        lesion_mask(self._files(*TISSUE_INPUTS, "lesion", "lesion_transform"), outputs, self.inputs.min_size_mm3)


class _SessionMetricsInputSpec(_TissueInputSpec):
    dseg = File(exists=True, mandatory=True, desc="tissue labels (Structural.dseg)")
    lesion_mask = File(exists=True, mandatory=True, desc="lesion mask on the T1w grid (LesionMask.mask)")
    fa = File(exists=True, desc="FA in T1w space")
    md = File(exists=True, desc="MD in T1w space")
    mtr = File(exists=True, desc="MTR in T1w space")
    r2star = File(exists=True, desc="R2* in T1w space")


class SessionMetrics(_Step):
    """Lesion labels, regional and per-lesion metrics, location classes and black holes of a session
    (:func:`msqmri.lesions.stage.session_metrics`)."""

    rule = "session_metrics"
    input_spec = _SessionMetricsInputSpec
    outputs_layout = layout.SESSION_METRICS

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import session_metrics

        session_metrics(self._files(*TISSUE_INPUTS, "dseg", "lesion_mask", "fa", "md", "mtr", "r2star"), outputs,
                        self._ids())  # fmt: skip


class _LesionIdentitiesInputSpec(_StepInputSpec):
    labels = File(exists=True, mandatory=True, desc="the session's lesion labels (SessionMetrics.labels)")
    tracking = File(exists=True, mandatory=True, desc="the subject's tracked lesions (LesionTracking.lesions)")


#: the rule's single output, under a key of its own
LESION_IDS = {"labels": layout.LESION_IDS}


class LesionIdentities(_Step):
    """A session's lesions labelled by persistent identity (:func:`msqmri.lesions.stage.lesion_identities`)."""

    rule = "lesion_identities"
    input_spec = _LesionIdentitiesInputSpec
    outputs_layout = LESION_IDS

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import lesion_identities

        lesion_identities(self.inputs.labels, self.inputs.tracking, self._ids()["session_id"], outputs["labels"])


# Session pairs: "from" is the earlier session, "to" the later one; outputs are named after the pair.


class _PairInputSpec(_SeedInputSpec):
    participant_id = traits.Str(mandatory=True, desc="the subject, e.g. sub-01")
    session_from = traits.Str(mandatory=True, desc="the earlier session, e.g. ses-01")
    session_to = traits.Str(mandatory=True, desc="the later session, e.g. ses-02")
    interval_days = traits.Float(desc="days between the sessions (annualised rates, chronic black holes)")


class _PairStep(_Step):
    """A step of a session pair: outputs named ``sub-01_ses-01to02_...`` in the node's directory."""

    def _wildcards(self) -> dict[str, str]:
        session_to = self.inputs.session_to.removeprefix("ses-")
        return {"subject": ".", "pair": f"{self.inputs.participant_id}_{self.inputs.session_from}to{session_to}"}

    def _pair_ids(self) -> dict[str, Any]:
        """The pair's ids as the workflow's ``params.ids`` (``interval_days`` None when unknown)."""
        interval = self.inputs.interval_days if isdefined(self.inputs.interval_days) else None
        return {"participant_id": self.inputs.participant_id, "session_from": self.inputs.session_from,
                "session_to": self.inputs.session_to, "interval_days": interval}  # fmt: skip

    def _pair_files(self, *names: str) -> tuple[dict[str, str], dict[str, str]]:
        """The set ``from_<name>`` / ``to_<name>`` inputs, split into one dict per session."""
        from msqmri.workflow.adapter import pair_inputs

        return pair_inputs(self._files(*(f"{side}_{name}" for side in ("from", "to") for name in names)))


class _PairStructuralInputSpec(_PairInputSpec):
    from_preproc = File(exists=True, mandatory=True, desc="earlier session's bias-corrected T1w (Structural.preproc)")
    from_brain_mask = File(exists=True, mandatory=True, desc="earlier session's brain mask (Structural.brain_mask)")
    from_icv_mask = File(exists=True, mandatory=True, desc="earlier session's ICV mask (Structural.icv_mask)")
    from_probseg_gm = File(exists=True, mandatory=True, desc="earlier session's GM fraction (Structural.probseg_gm)")
    from_probseg_wm = File(exists=True, mandatory=True, desc="earlier session's WM fraction (Structural.probseg_wm)")
    to_preproc = File(exists=True, mandatory=True, desc="later session's bias-corrected T1w (Structural.preproc)")
    to_brain_mask = File(exists=True, mandatory=True, desc="later session's brain mask (Structural.brain_mask)")
    to_icv_mask = File(exists=True, mandatory=True, desc="later session's ICV mask (Structural.icv_mask)")
    to_probseg_gm = File(exists=True, mandatory=True, desc="later session's GM fraction (Structural.probseg_gm)")
    to_probseg_wm = File(exists=True, mandatory=True, desc="later session's WM fraction (Structural.probseg_wm)")


class Halfway(_PairStep):
    """Skull-constrained two-way registration of a session pair and both T1w and brain maps resampled once
    into the halfway space (SIENA's registration, Smith et al. 2002) (:func:`msqmri.atrophy.stage.run_halfway`)."""

    rule = "halfway"
    input_spec = _PairStructuralInputSpec
    outputs_layout = layout.HALFWAY

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.atrophy.stage import run_halfway

        run_halfway(*self._pair_files(*layout.SCAN_KEYS), outputs, seed=self.inputs.seed)


class _HalfwayInputSpec(_PairInputSpec):
    transform = File(exists=True, mandatory=True, desc="the pair's halfway transform JSON (Halfway.transform)")


class _SienaInputSpec(_PairStructuralInputSpec, _HalfwayInputSpec):
    pass


class Siena(_PairStep):
    """Percentage brain volume change by edge displacement (SIENA-like, Smith et al. 2002) and the flow map
    (:func:`msqmri.atrophy.stage.run_siena`)."""

    rule = "siena"
    input_spec = _SienaInputSpec
    outputs_layout = layout.PBVC["siena"]

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.atrophy.stage import run_siena

        run_siena(*self._pair_files(*layout.SCAN_KEYS), self.inputs.transform, outputs, self._pair_ids())


class _JacobianInputSpec(_HalfwayInputSpec):
    image_from = File(exists=True, mandatory=True, desc="earlier T1w in halfway space (Halfway.image_from)")
    image_to = File(exists=True, mandatory=True, desc="later T1w in halfway space (Halfway.image_to)")
    brain_from = File(exists=True, mandatory=True, desc="earlier brain fraction in halfway space (Halfway.brain_from)")
    brain_to = File(exists=True, mandatory=True, desc="later brain fraction in halfway space (Halfway.brain_to)")


class Jacobian(_PairStep):
    """Percentage brain volume change by Jacobian integration of a symmetric SyN registration of the halfway
    images (Boyes et al. 2006; Avants et al. 2008) (:func:`msqmri.atrophy.stage.run_jacobian`)."""

    rule = "jacobian"
    input_spec = _JacobianInputSpec
    outputs_layout = layout.PBVC["jacobian"]

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.atrophy.stage import run_jacobian

        halfway = self._files("image_from", "image_to", "brain_from", "brain_to", "transform")
        run_jacobian(halfway, outputs, self._pair_ids(), seed=self.inputs.seed)


class _PairLesionInputSpec(_HalfwayInputSpec):
    grid = File(exists=True, mandatory=True, desc="the halfway grid (Halfway.image_from)")
    from_flair = File(exists=True, desc="earlier session's normalised FLAIR (FlairNormalization.flair)")
    to_flair = File(exists=True, desc="later session's normalised FLAIR (FlairNormalization.flair)")


class _LesionActivityInputSpec(_PairLesionInputSpec):
    from_labels = File(exists=True, mandatory=True, desc="earlier session's lesion labels (SessionMetrics.labels)")
    to_labels = File(exists=True, mandatory=True, desc="later session's lesion labels (SessionMetrics.labels)")
    from_lesions = File(exists=True, desc="earlier session's lesion table (SessionMetrics.lesions; black holes)")
    to_lesions = File(exists=True, desc="later session's lesion table (SessionMetrics.lesions; black holes)")
    from_dseg = File(exists=True, mandatory=True, desc="earlier session's tissue labels (Structural.dseg)")
    to_dseg = File(exists=True, mandatory=True, desc="later session's tissue labels (Structural.dseg)")
    from_mtr = File(exists=True, desc="earlier session's MTR in T1w space (MTR.mtr_t1w; with to_mtr)")
    to_mtr = File(exists=True, desc="later session's MTR in T1w space (MTR.mtr_t1w; with from_mtr)")
    enlarging = traits.Float(ENLARGING, usedefault=True, desc="volume increase of an enlarging lesion (0.5 = +50 %)")
    min_size_mm3 = traits.Float(MIN_SIZE_MM3, usedefault=True, desc="smallest lesion kept (mm^3)")


class LesionActivity(_PairStep):
    """New, enlarging, shrinking, resolved and stable lesions of a pair in its halfway space (from the
    subtraction image and the baseline lesion map with both FLAIRs, else by comparing the lesion maps),
    per-lesion MTR change and chronic black holes (:func:`msqmri.lesions.stage.lesion_activity`)."""

    rule = "lesion_activity"
    input_spec = _LesionActivityInputSpec
    outputs_layout = layout.LESION_ACTIVITY

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import lesion_activity

        names = [f"{side}_{key}" for side in ("from", "to") for key in ("labels", "lesions", "dseg", "flair", "mtr")]
        lesion_activity(self._files("transform", "grid", *names), outputs, self._pair_ids(),
                        enlarging=self.inputs.enlarging, min_size_mm3=self.inputs.min_size_mm3)  # fmt: skip


#: the rule's single output, under the key the subject report uses
FLAIR_SUBTRACTION = {"subtraction": layout.FLAIR_SUBTRACTION}


class FlairSubtraction(_PairStep):
    """Later minus earlier FLAIR in halfway space, both normalised to their local NAWM (the MAGNIMS
    subtraction image) (:func:`msqmri.lesions.stage.flair_subtraction`)."""

    rule = "flair_subtraction"
    input_spec = _PairLesionInputSpec
    outputs_layout = FLAIR_SUBTRACTION

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import flair_subtraction

        flair_subtraction(self._files("transform", "grid", "from_flair", "to_flair"), outputs["subtraction"])


class _LesionTrackingInputSpec(BaseInterfaceInputSpec):
    participant_id = traits.Str(mandatory=True, desc="the subject, e.g. sub-01")
    session_ids = traits.List(traits.Either(traits.Str, None), mandatory=True, desc="its sessions, in time order")
    sessions = InputMultiObject(File(exists=True), mandatory=True, desc="each session's lesion table, in order")
    pairs = InputMultiObject(File(exists=True), desc="each consecutive pair's changes (LesionActivity.changes)")
    days = traits.List(traits.Either(traits.Float, None), desc="each session's day (chronic black holes)")


class LesionTracking(_Step):
    """A subject's lesions with persistent identities across its sessions, and its per-session lesion
    counts by location (:func:`msqmri.lesions.stage.lesion_tracking`)."""

    rule = "lesion_tracking"
    input_spec = _LesionTrackingInputSpec
    outputs_layout = layout.LESION_TRACKING

    def _wildcards(self) -> dict[str, str]:
        return {"subject": self.inputs.participant_id}

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.lesions.stage import lesion_tracking

        days = self.inputs.days if isdefined(self.inputs.days) else [None] * len(self.inputs.sessions)
        pairs = self.inputs.pairs if isdefined(self.inputs.pairs) else []
        lesion_tracking(list(zip(self.inputs.session_ids, self.inputs.sessions, strict=True)), pairs, outputs,
                        self.inputs.participant_id, days)  # fmt: skip

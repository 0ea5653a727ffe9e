"""msqmri's processing steps as nipype interfaces, for users who build their own nipype workflows.

Each interface is a :class:`nipype.interfaces.base.SimpleInterface` around the same library function
the Snakemake rule calls: file inputs are traits, outputs are written into the node's working
directory under the derivative names of :mod:`msqmri.layout` (``stem`` gives the BIDS prefix, e.g.
``sub-01_ses-01``), and every output key of the step is an output trait. Example::

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
from typing import Any

from nipype.interfaces.base import BaseInterfaceInputSpec, File, InputMultiObject, SimpleInterface, TraitedSpec, traits

from msqmri import layout


def _output_spec(name: str, keys: Mapping[str, str]) -> type:
    """An output spec with one File trait per output key, defined in this module (nipype pickles results,
    so the class must be importable by name)."""
    spec = type(name, (TraitedSpec,), {"__module__": __name__, **{key: File(desc=key) for key in keys}})
    globals()[name] = spec
    return spec


class _StepInputSpec(BaseInterfaceInputSpec):
    stem = traits.Str(mandatory=True, desc="BIDS prefix of the outputs, e.g. sub-01_ses-01")
    seed = traits.Int(1, usedefault=True, desc="seed of the randomised steps (ANTs sampling)")


class _Step(SimpleInterface):
    """A step whose library function writes the outputs of one layout table (key -> path pattern)."""

    outputs_layout: Mapping[str, str] = {}

    def _paths(self, cwd: str) -> dict[str, str]:
        paths = {}
        for key, pattern in self.outputs_layout.items():
            path = os.path.join(cwd, pattern.format(sesdir=".", stem=self.inputs.stem, subject="sub", pair=self.inputs.stem))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            paths[key] = os.path.normpath(path)
        return paths

    def _run_interface(self, runtime: Any) -> Any:
        paths = self._paths(runtime.cwd)
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
    lesion = File(exists=True, desc="lesion mask in T1w space (optional)")
    backend = traits.Enum("template", "deepbet", usedefault=True, desc="brain extraction backend")


class Structural(_Step):
    """N4 bias correction, brain extraction, tissue segmentation, MNI registration and SIENAX-like volumes
    (:func:`msqmri.structural.run`)."""

    input_spec = _StructuralInputSpec
    output_spec = _output_spec("StructuralOutputSpec", layout.STRUCTURAL)
    outputs_layout = layout.STRUCTURAL

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.structural import run

        run(self.inputs.t1w, self.inputs.lesion or None, outputs, self._ids(), seed=self.inputs.seed,
            backend=self.inputs.backend)  # fmt: skip


class _T1wInputSpec(_StepInputSpec):
    t1w = File(exists=True, mandatory=True, desc="bias-corrected T1w (Structural.preproc)")
    t1w_mask = File(exists=True, mandatory=True, desc="T1w brain mask (Structural.brain_mask)")


class _MTRInputSpec(_T1wInputSpec):
    mt_on = File(exists=True, mandatory=True, desc="MT-on image")
    mt_off = File(exists=True, mandatory=True, desc="MT-off image")


class MTR(_Step):
    """Magnetization transfer ratio on the MT-off grid and in T1w space (:func:`msqmri.quantitative.mtr`)."""

    input_spec = _MTRInputSpec
    output_spec = _output_spec("MTROutputSpec", layout.MTR)
    outputs_layout = layout.MTR

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.quantitative import mtr

        mtr(self._files("mt_on", "mt_off", "t1w", "t1w_mask"), outputs, seed=self.inputs.seed)


class _R2starInputSpec(_T1wInputSpec):
    echoes = InputMultiObject(File(exists=True), mandatory=True, desc="MEGRE echoes in echo order (JSON sidecars beside them)")
    method = traits.Enum("wls", "arlo", "nlls", usedefault=True, desc="R2* fit")
    floor_snr = traits.Float(2.0, usedefault=True, desc="noise-floor multiple below which echoes are dropped")


class R2star(_Step):
    """R2*, T2*, S0 and fit residual on the MEGRE grid, R2* in T1w space (:func:`msqmri.quantitative.r2star`)."""

    input_spec = _R2starInputSpec
    output_spec = _output_spec("R2starOutputSpec", layout.R2STAR)
    outputs_layout = layout.R2STAR

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.quantitative import r2star

        r2star(self._files("t1w", "t1w_mask"), list(self.inputs.echoes), outputs, method=self.inputs.method,
               floor_snr=self.inputs.floor_snr, seed=self.inputs.seed)  # fmt: skip


class _LesionMaskInputSpec(_StepInputSpec):
    t1w = File(exists=True, mandatory=True, desc="bias-corrected T1w (Structural.preproc)")
    brain_mask = File(exists=True, mandatory=True, desc="T1w brain mask")
    lesion = File(exists=True, desc="user lesion mask in T1w space")
    flair = File(exists=True, desc="FLAIR registered to the T1w (for the built-in segmentation)")
    probseg_gm = File(exists=True, desc="GM fraction (built-in segmentation)")
    probseg_wm = File(exists=True, desc="WM fraction (built-in segmentation)")
    from_template = File(exists=True, desc="MNI -> T1w transform (built-in segmentation)")
    min_size_mm3 = traits.Float(3.0, usedefault=True, desc="smallest lesion kept (mm^3)")


class LesionMask(_Step):
    """The session's lesion mask: the user's, else the built-in FLAIR segmentation, else empty
    (:func:`msqmri.metrics.lesion_mask`)."""

    input_spec = _LesionMaskInputSpec
    output_spec = _output_spec("LesionMaskOutputSpec", layout.LESION_MASK)
    outputs_layout = layout.LESION_MASK

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.metrics import lesion_mask

        inputs = self._files("t1w", "brain_mask", "lesion", "flair", "probseg_gm", "probseg_wm", "from_template")
        lesion_mask(inputs, outputs, self.inputs.min_size_mm3)


class _SessionMetricsInputSpec(_StepInputSpec):
    brain_mask = File(exists=True, mandatory=True, desc="T1w brain mask")
    dseg = File(exists=True, mandatory=True, desc="tissue labels")
    lesion_mask = File(exists=True, mandatory=True, desc="lesion mask on the T1w grid")
    fa = File(exists=True, desc="FA in T1w space")
    md = File(exists=True, desc="MD in T1w space")
    mtr = File(exists=True, desc="MTR in T1w space")
    r2star = File(exists=True, desc="R2* in T1w space")
    flair = File(exists=True, desc="FLAIR in T1w space (partial-volume lesion volumes)")


class SessionMetrics(_Step):
    """Lesion labels, regional and per-lesion metrics of a session (:func:`msqmri.metrics.session_metrics`)."""

    input_spec = _SessionMetricsInputSpec
    output_spec = _output_spec("SessionMetricsOutputSpec", layout.SESSION_METRICS)
    outputs_layout = layout.SESSION_METRICS

    def run_step(self, outputs: dict[str, str]) -> None:
        from msqmri.metrics import session_metrics

        names = ("brain_mask", "dseg", "lesion_mask", "fa", "md", "mtr", "r2star", "flair")
        session_metrics(self._files(*names), outputs, self._ids())

"""Quality control: the T1w summary (:mod:`~msqmri.qc.summary`), figures (:mod:`~msqmri.qc.plots`) and the subject
and cohort HTML reports (:mod:`~msqmri.qc.report`)."""

"""Quantitative maps: magnetization transfer ratio (:mod:`~msqmri.qmri.mtr`) and R2* (:mod:`~msqmri.qmri.r2star`);
the steps' I/O in :mod:`~msqmri.qmri.stage`."""

"""The raw inputs: BIDS discovery and role selection (:mod:`~msqmri.inputs.bids`) and the per-session input checks
(:mod:`~msqmri.inputs.checks`)."""

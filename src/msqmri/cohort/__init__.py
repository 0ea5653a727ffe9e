"""Cohort outputs: the group tables (:mod:`~msqmri.cohort.tables`), MAGNIMS monitoring flags
(:mod:`~msqmri.cohort.monitoring`), protocol compliance across sessions (:mod:`~msqmri.cohort.protocol`) and ComBat
harmonisation across sites (:mod:`~msqmri.cohort.harmonize`)."""

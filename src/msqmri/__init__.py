"""msqmri: longitudinal quantitative MRI of multiple sclerosis."""

__version__ = "0.1.0"

"""Brain volume and its change: SIENAX-like cross-sectional volumes, SIENA-like PBVC."""

"""Beat tracking: madmom features and DBN (through `madmom_compat`), trackers and conditions."""

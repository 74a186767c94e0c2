"""Output sizes, window positions, padding rules (symmetric and TF SAME), probes."""

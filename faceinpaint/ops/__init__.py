"""Classical image operations: the hole solver, Poisson blending, the classical fills."""

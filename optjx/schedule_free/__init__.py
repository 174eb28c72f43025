"""Schedule-free optimization (Defazio et al. 2024): the core, the wrapper, the aliases, the accessors and the warm-up."""

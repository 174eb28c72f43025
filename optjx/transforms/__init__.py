"""Building blocks: one algorithm per module, each a state NamedTuple and a factory."""

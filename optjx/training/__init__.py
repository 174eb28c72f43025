"""Pure helpers around the optimizer: early stopping, parameter groups."""

"""Methods that call the loss themselves: L-BFGS, nonlinear conjugate gradients and the\nstrong-Wolfe line search they share."""

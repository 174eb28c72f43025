r"""BatchNorm statistics from ``torch.optim.swa_utils.update_bn`` (torch 2.13 CPU, float64),
for ``tests/training/test_batch_stats.py``.

Run alone, from the repository root: ``OMP_NUM_THREADS=1 python
tests/golden/generate_batch_stats.py``; it writes ``batch_stats/update_bn.npz``.

The network, small enough to read: ``Conv2d(1, 4, 3, padding=1) -> BatchNorm2d(4) -> ReLU
-> Conv2d(4, 6, 3, padding=1) -> BatchNorm2d(6) -> ReLU -> mean over H, W -> Linear(6, 5)
-> BatchNorm1d(5)``. Its weights are drawn with NumPy (seeded) and saved in torch's
layouts (conv kernels ``(out, in, kh, kw)``, linear ``(out, in)``); the batches are saved
NCHW, four of them with sizes 8, 8, 8 and 5 (the short last batch shows that every batch
counts equally, as in torch). The BatchNorm layers start from stale running statistics and
a momentum of 0.3, both of which ``update_bn`` must ignore.

Saved arrays: ``conv1/weight``, ``conv1/bias``, ``bn1/weight``, ``bn1/bias``, ... (the
weights); ``batch/0`` ... ``batch/3`` (the inputs); and for ``bn1``, ``bn2``, ``bn3``:
``<bn>/running_mean`` and ``<bn>/running_var`` as ``update_bn`` leaves them (torch's
unbiased variance), and ``<bn>/biased_var``, the cumulative average over the batches of
the biased batch variance of the layer's input, computed by torch from the inputs that a
forward pre-hook records during the same pass (Flax's convention).
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from torch import nn

OUT = pathlib.Path(__file__).resolve().parent / "batch_stats"
BATCH_SIZES = (8, 8, 8, 5)
SIDE = 8


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4, momentum=0.3)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6, momentum=0.3)
        self.linear = nn.Linear(6, 5)
        self.bn3 = nn.BatchNorm1d(5, momentum=0.3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.bn3(self.linear(x.mean(dim=(2, 3))))


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(20)
    net = Net().double()
    arrays: dict[str, np.ndarray] = {}
    for name, tensor in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        if name.endswith(("running_mean", "running_var")):  # stale, to be replaced
            value = rng.uniform(0.5, 3.0, tensor.shape)
        else:
            value = rng.normal(0.0, 0.6, tensor.shape) + (
                1.0 if name.endswith("bn1.weight") else 0.0
            )
            arrays[name.replace(".", "/")] = value
        tensor.copy_(torch.from_numpy(value))
    batches = [rng.normal(0.5, 1.5, (size, 1, SIDE, SIDE)) for size in BATCH_SIZES]
    for index, batch in enumerate(batches):
        arrays[f"batch/{index}"] = batch

    inputs: dict[str, list[torch.Tensor]] = {"bn1": [], "bn2": [], "bn3": []}
    for name in inputs:
        module = getattr(net, name)
        module.register_forward_pre_hook(
            lambda _, args, name=name: inputs[name].append(args[0].detach())
        )
    net.eval()  # update_bn must switch to training mode itself
    torch.optim.swa_utils.update_bn([torch.from_numpy(b) for b in batches], net)

    for name, seen in inputs.items():
        module = getattr(net, name)
        arrays[f"{name}/running_mean"] = module.running_mean.numpy().copy()
        arrays[f"{name}/running_var"] = module.running_var.numpy().copy()
        dims = (0, 2, 3) if seen[0].dim() == 4 else (0,)
        biased = torch.stack([x.var(dim=dims, unbiased=False) for x in seen]).mean(dim=0)
        arrays[f"{name}/biased_var"] = biased.numpy()
    OUT.mkdir(exist_ok=True)
    np.savez(OUT / "update_bn.npz", **arrays)
    print(f"wrote {OUT / 'update_bn.npz'}: {len(arrays)} arrays")


if __name__ == "__main__":
    main()

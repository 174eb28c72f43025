"""The PyTorch twin of ``examples/swa_onecycle.py``: the same recipe in torch 2.13, from
the same initial weights (the example's Flax initialisation, copied over) and the same
batches, so the two runs' curves can be compared.

    OMP_NUM_THREADS=1 python benchmarks/swa_onecycle_torch.py [--quick] [--epochs N]

``OneCycleLR`` stepped per update (stopped at its last rate, which optjx holds), then
from epoch ``swa_start`` ``SWALR`` stepped per epoch and ``AveragedModel`` updated after
every update, and ``swa_utils.update_bn`` before evaluating the average. Prints the same
per-epoch test accuracies and final table as the example. Needs torch, jax and flax.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import swa_onecycle as example  # noqa: E402
from _common import batch_indices, load_digits, table  # noqa: E402


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv2, self.bn2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
        self.dense = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.dense(x.mean(dim=(2, 3)))


def from_flax(net: Net, params) -> None:
    """The example's initial Flax params into the torch layers (HWIO -> OIHW kernels)."""
    pairs = [("conv1", "Conv_0"), ("conv2", "Conv_1")]
    with torch.no_grad():
        for mine, theirs in pairs:
            getattr(net, mine).weight.copy_(
                torch.from_numpy(np.asarray(params[theirs]["kernel"]).transpose(3, 2, 0, 1).copy())
            )
            getattr(net, mine).bias.copy_(torch.from_numpy(np.array(params[theirs]["bias"])))
        for mine, theirs in [("bn1", "BatchNorm_0"), ("bn2", "BatchNorm_1")]:
            getattr(net, mine).weight.copy_(torch.from_numpy(np.array(params[theirs]["scale"])))
            getattr(net, mine).bias.copy_(torch.from_numpy(np.array(params[theirs]["bias"])))
        net.dense.weight.copy_(torch.from_numpy(np.asarray(params["Dense_0"]["kernel"]).T.copy()))
        net.dense.bias.copy_(torch.from_numpy(np.array(params["Dense_0"]["bias"])))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    epochs = args.epochs or (8 if args.quick else 24)
    swa_start = epochs * 2 // 3
    torch.manual_seed(args.seed)

    x_train, y_train, x_test, y_test = load_digits(seed=args.seed)
    steps_per_epoch = len(x_train) // example.BATCH_SIZE
    rows = batch_indices(len(x_train), example.BATCH_SIZE, epochs * steps_per_epoch, args.seed)
    nchw = lambda x: torch.from_numpy(x.transpose(0, 3, 1, 2).copy())  # noqa: E731
    xs, ys, xt, yt = (
        nchw(x_train),
        torch.from_numpy(y_train).long(),
        nchw(x_test),
        torch.from_numpy(y_test).long(),
    )

    net = Net()
    from_flax(net, example.initial_variables(example.make_model(), args.seed)["params"])
    one_cycle_steps = swa_start * steps_per_epoch
    optimizer = torch.optim.SGD(net.parameters(), lr=example.MAX_LR, momentum=0.9)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=example.MAX_LR, total_steps=one_cycle_steps
    )
    swa_model = torch.optim.swa_utils.AveragedModel(net)
    swa_scheduler = None
    loader = [xs[i : i + example.STATS_BATCH] for i in range(0, len(xs), example.STATS_BATCH)]

    def evaluate(model):
        model.eval()
        with torch.no_grad():
            return [
                float((model(x).argmax(-1) == y).float().mean()) for x, y in ((xs, ys), (xt, yt))
            ]

    history = {
        "last iterate": [],
        "averaged, training statistics": [],
        "averaged, recomputed statistics": [],
    }
    step = 0
    for epoch in range(epochs):
        if epoch == swa_start:  # takes over from the rate OneCycle left
            swa_scheduler = torch.optim.swa_utils.SWALR(
                optimizer, swa_lr=example.SWA_LR, anneal_epochs=example.ANNEAL_EPOCHS
            )
        net.train()
        for batch in rows[epoch * steps_per_epoch : (epoch + 1) * steps_per_epoch]:
            index = torch.from_numpy(batch).long()
            loss = nn.functional.cross_entropy(net(xs[index]), ys[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if epoch < swa_start:
                if step < one_cycle_steps:  # optjx holds the last rate; torch would go past it
                    one_cycle.step()
            else:
                swa_model.update_parameters(net)
        if swa_scheduler is not None:
            swa_scheduler.step()
        averaged = swa_model if epoch >= swa_start else net
        history["last iterate"].append(evaluate(net))
        with torch.no_grad():  # the running statistics of training
            for mine, theirs in zip(swa_model.module.buffers(), net.buffers(), strict=True):
                mine.copy_(theirs)
        history["averaged, training statistics"].append(evaluate(averaged))
        if epoch >= swa_start:
            torch.optim.swa_utils.update_bn(loader, swa_model)
            history["averaged, recomputed statistics"].append(evaluate(swa_model))
        else:
            history["averaged, recomputed statistics"].append([np.nan, np.nan])

    print(
        f"torch {torch.__version__}: {epochs} epochs of {steps_per_epoch} updates; SWA from epoch {swa_start}"
    )
    print("test accuracy per epoch (last iterate / averaged, training statistics / recomputed):")
    for epoch, tests in enumerate(
        zip(*([test for _, test in h] for h in history.values()), strict=True)
    ):
        print(f"  epoch {epoch + 1:2d}: " + " / ".join(f"{t:.4f}" for t in tests))
    print(
        table(
            [[name, f"{h[-1][0]:.4f}", f"{h[-1][1]:.4f}"] for name, h in history.items()],
            ["weights", "train", "test"],
        )
    )


if __name__ == "__main__":
    main()

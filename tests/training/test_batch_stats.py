"""``recompute_batch_stats`` (Linen) and ``recompute_batch_stats_nnx`` against
``torch.optim.swa_utils.update_bn``, recorded by ``tests/golden/generate_batch_stats.py``
(the network and the batches are described there), and the reason the functions exist:
averaged weights evaluated with stale statistics, then with recomputed ones."""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optjx

flax = pytest.importorskip("flax")
from flax import linen as nn  # noqa: E402
from flax import nnx  # noqa: E402

GOLDEN = np.load(
    pathlib.Path(__file__).resolve().parents[1] / "golden" / "batch_stats" / "update_bn.npz"
)
NORMS = ("bn1", "bn2", "bn3")
TORCH_EPS = 1e-5


def _nhwc_batches():
    """The golden's batches, NCHW in torch, NHWC for Flax; a one-pass generator."""
    index = 0
    while f"batch/{index}" in GOLDEN:
        yield jnp.asarray(GOLDEN[f"batch/{index}"].transpose(0, 2, 3, 1))
        index += 1


def _conv_kernel(name):
    return jnp.asarray(GOLDEN[f"{name}/weight"].transpose(2, 3, 1, 0))  # OIHW -> HWIO


def _expected(norm, unbiased):
    return GOLDEN[f"{norm}/running_mean"], GOLDEN[
        f"{norm}/running_var" if unbiased else f"{norm}/biased_var"
    ]


# --- Linen -------------------------------------------------------------------------------


class LinenNet(nn.Module):
    """The golden's network; the BatchNorms follow a ``train`` flag, momentum 0.9."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        f64 = {"dtype": jnp.float64, "param_dtype": jnp.float64}
        norm = {"use_running_average": not train, "momentum": 0.9, "epsilon": TORCH_EPS}
        norm |= {"force_float32_reductions": False, **f64}
        x = nn.relu(
            nn.BatchNorm(name="bn1", **norm)(nn.Conv(4, (3, 3), padding=1, name="conv1", **f64)(x))
        )
        x = nn.relu(
            nn.BatchNorm(name="bn2", **norm)(nn.Conv(6, (3, 3), padding=1, name="conv2", **f64)(x))
        )
        return nn.BatchNorm(name="bn3", **norm)(
            nn.Dense(5, name="linear", **f64)(x.mean(axis=(1, 2)))
        )


def _linen_variables():
    params = {
        "conv1": {"kernel": _conv_kernel("conv1"), "bias": jnp.asarray(GOLDEN["conv1/bias"])},
        "conv2": {"kernel": _conv_kernel("conv2"), "bias": jnp.asarray(GOLDEN["conv2/bias"])},
        "linear": {
            "kernel": jnp.asarray(GOLDEN["linear/weight"].T),
            "bias": jnp.asarray(GOLDEN["linear/bias"]),
        },
    }
    params |= {
        n: {"scale": jnp.asarray(GOLDEN[f"{n}/weight"]), "bias": jnp.asarray(GOLDEN[f"{n}/bias"])}
        for n in NORMS
    }
    # Stale statistics, with an inf: the recompute must not read them.
    stale = {
        n: {
            "mean": jnp.full_like(params[n]["bias"], jnp.inf),
            "var": jnp.full_like(params[n]["bias"], 7.0),
        }
        for n in NORMS
    }
    return {"params": params, "batch_stats": stale}


@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
@pytest.mark.parametrize("train", [False, True], ids=["eval_flag", "train_flag"])
def test_linen_matches_torch_update_bn(x64, unbiased, train):
    variables = _linen_variables()
    new = optjx.recompute_batch_stats(
        LinenNet().apply,
        variables,
        _nhwc_batches(),
        unbiased=unbiased,
        apply_kwargs={"train": train},
    )
    assert new["params"] is variables["params"]
    for norm in NORMS:
        mean, var = _expected(norm, unbiased)
        np.testing.assert_allclose(new["batch_stats"][norm]["mean"], mean, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(new["batch_stats"][norm]["var"], var, rtol=1e-11)
        assert new["batch_stats"][norm]["var"].dtype == jnp.float64


def test_linen_compiles_once_for_repeated_calls(x64):
    """An evaluation every epoch recomputes the statistics every epoch: the second call
    reuses the compiled pass (``apply`` runs only while tracing)."""
    net, traces = LinenNet(), []

    def apply(*args, **kwargs):
        traces.append(args[1].shape)
        return net.apply(*args, **kwargs)

    for _ in range(2):
        optjx.recompute_batch_stats(apply, _linen_variables(), _nhwc_batches())
    assert traces == [(8, 8, 8, 1), (5, 8, 8, 1)]  # the short last batch: one more trace


def test_linen_keeps_float32_statistics(x64):
    variables = _linen_variables()
    variables["batch_stats"] = jax.tree.map(
        lambda s: s.astype(jnp.float32), variables["batch_stats"]
    )
    new = optjx.recompute_batch_stats(LinenNet().apply, variables, _nhwc_batches())
    for norm in NORMS:
        assert new["batch_stats"][norm]["mean"].dtype == jnp.float32
        np.testing.assert_allclose(
            new["batch_stats"][norm]["var"], _expected(norm, False)[1], rtol=1e-5
        )


class TwoHeads(nn.Module):
    """A BatchNorm that the default call does not reach."""

    @nn.compact
    def __call__(self, x, other: bool = False):
        if other:
            return nn.BatchNorm(use_running_average=True, name="other")(x)
        return nn.BatchNorm(use_running_average=True, name="used")(x)


def test_linen_errors_and_no_batch_norm():
    x = jnp.ones((4, 3))
    heads = TwoHeads()
    both = {
        "params": {
            **heads.init(jax.random.key(0), x)["params"],
            **heads.init(jax.random.key(0), x, True)["params"],
        },
        "batch_stats": {
            **heads.init(jax.random.key(0), x)["batch_stats"],
            **heads.init(jax.random.key(0), x, True)["batch_stats"],
        },
    }
    with pytest.raises(ValueError, match="other"):
        optjx.recompute_batch_stats(heads.apply, both, [x])
    with pytest.raises(ValueError, match="empty"):
        optjx.recompute_batch_stats(heads.apply, heads.init(jax.random.key(0), x), [])
    with pytest.raises(TypeError, match="unbiased"):
        optjx.recompute_batch_stats(heads.apply, both, [x], unbiased=1)
    with pytest.raises(ValueError, match="mutable"):
        optjx.recompute_batch_stats(heads.apply, both, [x], apply_kwargs={"mutable": True})
    frozen = flax.core.freeze(heads.init(jax.random.key(0), x))
    assert isinstance(optjx.recompute_batch_stats(heads.apply, frozen, [x]), flax.core.FrozenDict)
    no_norm = nn.Dense(2)
    plain = no_norm.init(jax.random.key(0), x)
    assert optjx.recompute_batch_stats(no_norm.apply, plain, iter(())) is plain


# --- NNX ---------------------------------------------------------------------------------


class NnxNet(nnx.Module):
    """The golden's network in NNX, float64 statistics; momentum 0.5, in eval mode."""

    def __init__(self):
        rngs = nnx.Rngs(0)
        f64 = {"dtype": jnp.float64, "param_dtype": jnp.float64, "rngs": rngs}
        # The golden's weights replace the kernels: no random init (its float64 truncated
        # normals compile for ~2 s per shape).
        zeros = {"kernel_init": nnx.initializers.zeros_init()}
        self.conv1 = nnx.Conv(1, 4, (3, 3), padding=1, **f64, **zeros)
        self.conv2 = nnx.Conv(4, 6, (3, 3), padding=1, **f64, **zeros)
        self.linear = nnx.Linear(6, 5, **f64, **zeros)
        self.bn1, self.bn2, self.bn3 = (
            nnx.BatchNorm(k, momentum=0.5, epsilon=TORCH_EPS, use_running_average=True, **f64)
            for k in (4, 6, 5)
        )

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.conv1(x)))
        x = nnx.relu(self.bn2(self.conv2(x), use_running_average=True))  # the call's flag too
        return self.bn3(self.linear(x.mean(axis=(1, 2))))


def _nnx_model(stats_dtype=jnp.float64):
    model = NnxNet()
    model.conv1.kernel[...], model.conv1.bias[...] = _conv_kernel("conv1"), GOLDEN["conv1/bias"]
    model.conv2.kernel[...], model.conv2.bias[...] = _conv_kernel("conv2"), GOLDEN["conv2/bias"]
    model.linear.kernel[...], model.linear.bias[...] = (
        GOLDEN["linear/weight"].T,
        GOLDEN["linear/bias"],
    )
    for name in NORMS:
        norm = getattr(model, name)
        norm.scale[...], norm.bias[...] = GOLDEN[f"{name}/weight"], GOLDEN[f"{name}/bias"]
        norm.mean = nnx.BatchStat(jnp.full(norm.bias.shape, jnp.nan, stats_dtype))  # stale
        norm.var = nnx.BatchStat(jnp.full(norm.bias.shape, 7.0, stats_dtype))
    return model


@pytest.mark.parametrize("unbiased", [False, True], ids=["biased", "unbiased"])
def test_nnx_matches_torch_update_bn(x64, unbiased):
    model = _nnx_model()
    kernel = np.asarray(model.conv1.kernel[...])
    optjx.recompute_batch_stats_nnx(model, _nhwc_batches(), unbiased=unbiased)
    np.testing.assert_array_equal(model.conv1.kernel[...], kernel)  # bit for bit
    for name in NORMS:
        norm = getattr(model, name)
        mean, var = _expected(name, unbiased)
        np.testing.assert_allclose(norm.mean[...], mean, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(norm.var[...], var, rtol=1e-11)
        # The layer is as it was: its class, momentum and mode.
        assert (
            type(norm) is nnx.BatchNorm
            and norm.momentum == 0.5
            and norm.use_running_average is True
        )


# Flax's own update writes the float64 batch statistics into the float32 variables.
@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types")
def test_nnx_keeps_float32_statistics(x64):
    model = _nnx_model(jnp.float32)
    optjx.recompute_batch_stats_nnx(model, _nhwc_batches())
    assert model.bn2.var[...].dtype == jnp.float32
    np.testing.assert_allclose(model.bn2.var[...], _expected("bn2", False)[1], rtol=1e-5)


class Unreached(nnx.Module):
    def __init__(self):
        self.used = nnx.BatchNorm(3, rngs=nnx.Rngs(0))
        self.spare = nnx.BatchNorm(3, rngs=nnx.Rngs(0))

    def __call__(self, x):
        return self.used(x)


def test_nnx_errors_restore_the_layers():
    model = Unreached()
    with pytest.raises(ValueError, match="spare"):
        optjx.recompute_batch_stats_nnx(model, [jnp.ones((4, 3))])
    assert type(model.spare) is nnx.BatchNorm and model.spare.momentum == 0.99
    assert model.spare.use_running_average is False
    np.testing.assert_array_equal(model.used.var[...], 1.0)  # the statistics it came with
    with pytest.raises(ValueError, match="empty"):
        optjx.recompute_batch_stats_nnx(Unreached(), [])
    with pytest.raises(TypeError, match="progress"):
        optjx.recompute_batch_stats_nnx(Unreached(), [], progress="yes")
    assert optjx.recompute_batch_stats_nnx(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), iter(())) is None


def test_progress_bar(monkeypatch, capsys):
    model = Unreached()
    model.spare = None
    optjx.recompute_batch_stats_nnx(model, [jnp.ones((4, 3)), jnp.zeros((4, 3))], progress=True)
    assert "2/2" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm not installed
    with pytest.raises(ImportError, match="pip install tqdm"):
        optjx.recompute_batch_stats_nnx(model, [jnp.ones((4, 3))], progress=True)


# --- why: averaged weights with stale statistics ------------------------------------------


class DigitsNet(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        for features in (8, 16):
            x = nn.Conv(features, (3, 3))(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


def test_averaged_weights_need_recomputed_statistics():
    """SWA on scikit-learn's digits: the uniform average of the SGD iterates, evaluated
    with the running statistics of training (those of the last iterates), is far worse
    than the last iterate; with recomputed statistics it is better."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1200], order[1200:]
    x_train, y_train = jnp.asarray(images[train]), jnp.asarray(digits.target[train])
    net = DigitsNet()
    variables = jax.jit(net.init)(jax.random.key(0), x_train[:2])
    tx = optjx.polyak_averaging(optjx.sgd(0.2, momentum=0.9))  # uniform: SWA's average

    def loss(params, stats, rows):
        logits, mutated = net.apply(
            {"params": params, "batch_stats": stats},
            x_train[rows],
            train=True,
            mutable=["batch_stats"],
        )
        return optax.softmax_cross_entropy_with_integer_labels(
            logits, y_train[rows]
        ).mean(), mutated["batch_stats"]

    def step(carry, rows):
        params, stats, opt_state = carry
        grads, stats = jax.grad(loss, has_aux=True)(params, stats, rows)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), None

    rows = np.random.default_rng(1).integers(0, len(train), (200, 64))
    carry = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))
    (params, stats, opt_state), _ = jax.jit(lambda c: jax.lax.scan(step, c, rows))(carry)

    predict = jax.jit(net.apply)

    def accuracy(variables):
        return float(
            np.mean(np.argmax(predict(variables, images[test]), -1) == digits.target[test])
        )

    averaged = optjx.averaged_params(opt_state)
    last = accuracy({"params": params, "batch_stats": stats})
    stale = accuracy({"params": averaged, "batch_stats": stats})
    recomputed = optjx.recompute_batch_stats(
        net.apply,
        {"params": averaged, "batch_stats": stats},
        (x_train[i : i + 200] for i in range(0, 1200, 200)),
    )
    fresh = accuracy(recomputed)
    assert recomputed["params"] is averaged
    assert stale < last - 0.2, (last, stale)
    assert fresh > max(last, 0.85), (last, fresh)

#!/usr/bin/python3
"""Golden comparison of the zoo against PyTorch: each model's loss and the gradient of every parameter, with
identical weights and data, from `flowgrad run` (float32 kernels) and from the same model written in PyTorch
(float64). Prints, per tensor, the worst error relative to the tensor's largest magnitude,
max|flowgrad - torch64| / max|torch64|, beside the same figure for PyTorch in float32: the rounding that
any float32 implementation has. Asserts nothing; run it where Debian's python3-torch is installed:

    /usr/bin/python3 bench/torch_golden.py [BUILD_DIR] [--models dense,deep,...] [--batch 16]

The models follow zoo/*.yaml with flowgrad's layouts and conventions (docs/spec.md, "Conventions next to
PyTorch and Keras"): dense kernels [in, out], LSTM gates i, f, c~, o in one [in, 4 units] kernel with one
bias, GRU gates r, z, n with the reset gate after the recurrent product, binary cross-entropy of a sigmoid
from its logits.
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def images(n):
    with gzip.open(DATA) as f:
        raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return (raw[: n * 784].astype(np.float32) / 255.0).reshape(n, 784)


# ---- the models: parameter shapes, and the loss as a function of torch tensors ------------------------------

def dense_params(layers):
    """layers: [(name, in, out)] -> {name/kernel: [in, out], name/bias: [out]}"""
    shapes = {}
    for name, n_in, n_out in layers:
        shapes[f"{name}/kernel"] = (n_in, n_out)
        shapes[f"{name}/bias"] = (n_out,)
    return shapes


def dense(p, name, x, activation=None):
    z = x @ p[f"{name}/kernel"] + p[f"{name}/bias"]
    return z if activation is None else activation(z)


def lstm(p, name, x, units, steps=None):
    """x [batch, steps, in] (or [batch, in] repeated `steps` times); returns (sequence, last h)."""
    w, u, b = p[f"{name}/kernel"], p[f"{name}/recurrent_kernel"], p[f"{name}/bias"]
    batch = x.shape[0]
    steps = steps or x.shape[1]
    h = x.new_zeros(batch, units)
    c = x.new_zeros(batch, units)
    out = []
    for t in range(steps):
        xt = x if x.dim() == 2 else x[:, t]
        i, f, g, o = (xt @ w + h @ u + b).split(units, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        out.append(h)
    return torch.stack(out, dim=1), h


def gru(p, name, x, units, steps=None):
    w, u = p[f"{name}/kernel"], p[f"{name}/recurrent_kernel"]
    b, rb = p[f"{name}/bias"], p[f"{name}/recurrent_bias"]
    batch = x.shape[0]
    steps = steps or x.shape[1]
    h = x.new_zeros(batch, units)
    out = []
    for t in range(steps):
        xt = x if x.dim() == 2 else x[:, t]
        xr, xz, xn = (xt @ w + b).split(units, dim=1)
        hr, hz, hn = (h @ u + rb).split(units, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        out.append(h)
    return torch.stack(out, dim=1), h


def recurrent_params(cell, units, width):
    gates = 4 if cell == "lstm" else 3
    shapes = {}
    for name, n_in in (("encoder", width), ("decoder", units)):
        shapes[f"{name}/kernel"] = (n_in, gates * units)
        shapes[f"{name}/recurrent_kernel"] = (units, gates * units)
        shapes[f"{name}/bias"] = (gates * units,)
        if cell == "gru":
            shapes[f"{name}/recurrent_bias"] = (gates * units,)
    shapes.update(dense_params([("decoded", units, width)]))
    return shapes


def recurrent_loss(cell):
    run = lstm if cell == "lstm" else gru

    def loss(p, x):
        _, code = run(p, "encoder", x, 128)
        seq, _ = run(p, "decoder", code, 128, steps=x.shape[1])
        return F.mse_loss(torch.sigmoid(seq @ p["decoded/kernel"] + p["decoded/bias"]), x)
    return loss


def conv_params():
    shapes = {}
    for name, c_in, c_out in (("conv1", 1, 32), ("conv2", 32, 32), ("conv3", 32, 32), ("conv4", 32, 32), ("decoded", 32, 1)):
        shapes[f"{name}/kernel"] = (c_out, c_in, 3, 3)
        shapes[f"{name}/bias"] = (c_out,)
    return shapes


def conv_loss(p, x):
    def conv(name, h):
        return F.conv2d(h, p[f"{name}/kernel"], p[f"{name}/bias"], padding=1)
    h = F.max_pool2d(F.relu(conv("conv1", x)), 2)
    h = F.max_pool2d(F.relu(conv("conv2", h)), 2)
    h = F.interpolate(F.relu(conv("conv3", h)), scale_factor=2, mode="nearest")
    h = F.interpolate(F.relu(conv("conv4", h)), scale_factor=2, mode="nearest")
    return F.mse_loss(torch.sigmoid(conv("decoded", h)), x)


DEEP = [("encoder_1", 784, 512), ("encoder_2", 512, 256), ("encoder_3", 256, 64), ("encoder_4", 64, 2),
        ("decoder_1", 2, 64), ("decoder_2", 64, 256), ("decoder_3", 256, 512), ("decoder_4", 512, 784)]


def deep_loss(p, x):
    h = x
    for name, _, _ in DEEP[:-1]:
        h = dense(p, name, h, None if name == "encoder_4" else F.relu)
    return F.mse_loss(torch.sigmoid(dense(p, "decoder_4", h)), x)


MODELS = {
    # name: (parameter shapes, loss(params, x), input shape per sample)
    "dense": (dense_params([("encoding", 784, 32), ("decoding", 32, 784)]),
              lambda p, x: F.binary_cross_entropy_with_logits(dense(p, "decoding", dense(p, "encoding", x, F.relu)), x),
              (784,)),
    "linear": (dense_params([("encoding", 784, 32), ("decoding", 32, 784)]),
               lambda p, x: F.mse_loss(dense(p, "decoding", dense(p, "encoding", x)), x), (784,)),
    "deep": (dense_params(DEEP), deep_loss, (784,)),
    "conv": (conv_params(), conv_loss, (1, 28, 28)),
    "lstm": (recurrent_params("lstm", 128, 28), recurrent_loss("lstm"), (28, 28)),
    "gru": (recurrent_params("gru", 128, 28), recurrent_loss("gru"), (28, 28)),
}


def relative(a, b):
    scale = float(np.abs(b).max())
    return float(np.abs(a - b).max()) / (scale if scale > 0 else 1.0)


def torch_gradients(loss_fn, weights, x, dtype):
    params = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in weights.items()}
    loss = loss_fn(params, torch.tensor(x, dtype=dtype))
    loss.backward()
    return float(loss), {k: p.grad.numpy().astype(np.float64) for k, p in params.items()}


def compare(model, flowgrad, batch, seed):
    shapes, loss_fn, sample = MODELS[model]
    rng = np.random.default_rng(seed)
    # Weights at the scale of trained ones (uniform, 1 / sqrt(fan-in)), so that no unit sits saturated.
    weights = {}
    for name, shape in sorted(shapes.items()):
        fan_in = shape[0] if len(shape) == 2 else int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        bound = 1.0 / np.sqrt(fan_in)
        weights[name] = rng.uniform(-bound, bound, shape).astype(np.float32)
    x = images(batch).reshape((batch,) + sample)
    with tempfile.TemporaryDirectory() as tmp:
        args = [flowgrad, "run", os.path.join(ROOT, "zoo", f"{model}.yaml"), "--threads", "1"]
        np.save(os.path.join(tmp, "x.npy"), x)
        args += ["--input", f"x={tmp}/x.npy", "--fetch", f"loss={tmp}/loss.npy"]
        for i, (name, w) in enumerate(sorted(weights.items())):
            np.save(os.path.join(tmp, f"p{i}.npy"), w)
            args += ["--param", f"{name}={tmp}/p{i}.npy", "--fetch", f"{name}/grad={tmp}/g{i}.npy"]
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        ours_loss = float(np.load(os.path.join(tmp, "loss.npy")))
        ours = {name: np.load(os.path.join(tmp, f"g{i}.npy")).astype(np.float64)
                for i, name in enumerate(sorted(weights))}
    loss64, grads64 = torch_gradients(loss_fn, weights, x, torch.float64)
    loss32, grads32 = torch_gradients(loss_fn, weights, x, torch.float32)
    rows = [("loss", relative(np.array(ours_loss), np.array(loss64)), relative(np.array(loss32), np.array(loss64)))]
    for name in sorted(weights):
        rows.append((f"{name}/grad", relative(ours[name], grads64[name]), relative(grads32[name], grads64[name])))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", nargs="?", default=os.path.join(ROOT, "build"))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    flowgrad = os.path.join(args.build, "tools", "flowgrad")
    if not os.access(flowgrad, os.X_OK):
        sys.exit(f"torch_golden: {flowgrad} not found; build first")
    torch.set_num_threads(1)
    print(f"{'model':<7} {'tensor':<34} {'flowgrad vs torch64':>20} {'torch32 vs torch64':>19}")
    worst = {}
    for model in args.models.split(","):
        for tensor, ours, baseline in compare(model, flowgrad, args.batch, args.seed):
            print(f"{model:<7} {tensor:<34} {ours:>20.2e} {baseline:>19.2e}")
            w = worst.setdefault(model, [0.0, 0.0])
            w[0], w[1] = max(w[0], ours), max(w[1], baseline)
    print()
    print(f"{'model':<7} {'worst flowgrad':>15} {'worst torch32':>14}")
    for model, (ours, baseline) in worst.items():
        print(f"{model:<7} {ours:>15.2e} {baseline:>14.2e}")


if __name__ == "__main__":
    main()

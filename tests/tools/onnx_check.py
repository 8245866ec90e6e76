"""Checks an ONNX file that `flowgrad export --onnx` wrote, with Debian's python3-onnx:

    onnx_check.py MODEL.onnx INPUT.npy EXPECTED.npy [OUTPUT]

1. onnx.checker.check_model(full_check=True): the structure, every op against its opset schema, and ONNX's
   shape inference over the whole graph;
2. runs the graph in double precision with a small numpy interpreter of the ops flowgrad exports, written
   from the ONNX operator specifications (LSTM, GRU and pooling use the numpy references that ship with onnx
   in onnx.backend.test.case.node), on INPUT, and compares OUTPUT (default: the first output) with EXPECTED,
   what flowgrad computed: the largest difference must stay below 1e-4.

python3-onnx 1.12 (Debian 12) has no onnx.reference.ReferenceEvaluator (that came with 1.13), hence the
interpreter. Exit status 0 when both hold; 1 with the reason otherwise.
"""
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node.gru import GRU_Helper
from onnx.backend.test.case.node.lstm import LSTM_Helper
from onnx.backend.test.case.node.pool_op_common import get_output_shape, pool


def attributes(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def conv(x, w, b, a):
    pads, strides, dilations = a.get("pads", [0] * 4), a.get("strides", [1, 1]), a.get("dilations", [1, 1])
    group = a.get("group", 1)
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, wd = x.shape
    f, cg, kh, kw = w.shape
    oh = (h - (kh - 1) * dilations[0] - 1) // strides[0] + 1
    ow = (wd - (kw - 1) * dilations[1] - 1) // strides[1] + 1
    y = np.zeros((n, f, oh, ow))
    per_group = f // group
    for g in range(group):
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dilations[0]:i * dilations[0] + strides[0] * oh:strides[0],
                           j * dilations[1]:j * dilations[1] + strides[1] * ow:strides[1]]
                y[:, g * per_group:(g + 1) * per_group] += np.einsum("nchw,fc->nfhw", patch,
                                                                      w[g * per_group:(g + 1) * per_group, :, i, j])
    return y + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def pooling(x, a, kind):
    kernel, strides, pads = a["kernel_shape"], a.get("strides", a["kernel_shape"]), a.get("pads", [0] * 4)
    total = [pads[0] + pads[2], pads[1] + pads[3]]
    out = get_output_shape("VALID", np.add(x.shape[2:], total), kernel, strides)
    padded = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=np.nan)
    return pool(padded, x.shape, kernel, strides, out, total, kind, a.get("count_include_pad", 0))


def run(model, feeds):
    values = dict(feeds)
    for t in model.graph.initializer:
        values[t.name] = numpy_helper.to_array(t).astype(np.float64 if t.data_type == 1 else np.int64)
    for node in model.graph.node:
        a = attributes(node)
        x = [values.get(name) if name else None for name in node.input]
        op = node.op_type
        unary = {"Relu": lambda v: np.maximum(v, 0), "Sigmoid": lambda v: 1 / (1 + np.exp(-v)), "Tanh": np.tanh,
                 "Softplus": lambda v: np.log1p(np.exp(v)), "Identity": lambda v: v, "Exp": np.exp, "Log": np.log,
                 "Sqrt": np.sqrt, "Abs": np.abs, "Neg": np.negative,
                 "LeakyRelu": lambda v: np.where(v > 0, v, a.get("alpha", 0.01) * v),
                 "Elu": lambda v: np.where(v > 0, v, a.get("alpha", 1.0) * (np.exp(v) - 1))}
        binary = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "MatMul": np.matmul}
        if op in unary:
            out = [unary[op](x[0])]
        elif op in binary:
            out = [binary[op](x[0], x[1])]
        elif op == "Conv":
            out = [conv(x[0], x[1], x[2] if len(x) > 2 else None, a)]
        elif op in ("MaxPool", "AveragePool"):
            out = [pooling(x[0], a, "MAX" if op == "MaxPool" else "AVG")]
        elif op == "Resize":
            assert a["mode"] == b"nearest" and a["coordinate_transformation_mode"] == b"asymmetric"
            scales = x[2].astype(int)
            out = [x[0].repeat(scales[2], axis=2).repeat(scales[3], axis=3)]
        elif op == "Flatten":
            out = [x[0].reshape(x[0].shape[0], -1)]
        elif op == "Reshape":
            shape = [x[0].shape[i] if d == 0 else d for i, d in enumerate(x[1])]
            out = [x[0].reshape(shape)]
        elif op == "Transpose":
            out = [np.transpose(x[0], a["perm"])]
        elif op == "Concat":
            out = [np.concatenate(x, axis=a["axis"])]
        elif op == "Unsqueeze":
            out = [np.expand_dims(x[0], tuple(x[1]))]
        elif op == "Squeeze":
            out = [np.squeeze(x[0], tuple(x[1]))]
        elif op == "Expand":
            out = [x[0] * np.ones(x[1])]
        elif op == "BatchNormalization":
            xs, scale, bias, mean, var = x
            shape = (1, -1) + (1,) * (xs.ndim - 2)
            out = [(xs - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + a.get("epsilon", 1e-5)) * scale.reshape(shape)
                   + bias.reshape(shape)]
        elif op in ("LSTM", "GRU"):
            assert a.get("layout") == 1 and len(x) <= 5, "the check covers batch-first layers without initial states"
            # The 1.12 helpers size their zero initial state wrongly for layout 1: run them sequence-first.
            params = dict(X=np.swapaxes(x[0], 0, 1), W=x[1], R=x[2], B=x[3])
            if op == "GRU":
                params["linear_before_reset"] = a.get("linear_before_reset", 0)
            y, y_h = (LSTM_Helper if op == "LSTM" else GRU_Helper)(**params).step()
            y, y_h = np.transpose(y, (2, 0, 1, 3)), np.swapaxes(y_h, 0, 1)
            out = [y, y_h, np.full(y_h.shape, np.nan)]  # Y_c: not computed by the reference; NaN if ever read
        else:
            raise SystemExit(f"onnx_check: no reference for op {op}")
        for name, value in zip(node.output, out):
            values[name] = value
    return values


def main():
    model_path, input_path, expected_path = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    graph_input = next(i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer})
    output = sys.argv[4] if len(sys.argv) > 4 else model.graph.output[0].name
    values = run(model, {graph_input: np.load(input_path).astype(np.float64)})
    got, expected = values[output], np.load(expected_path)
    if got.shape != expected.shape:
        raise SystemExit(f"onnx_check: output {output} has shape {got.shape}, flowgrad's {expected.shape}")
    difference = float(np.max(np.abs(got - expected)))
    print(f"onnx_check: {model_path}: checker passed (opset {model.opset_import[0].version}), "
          f"{len(model.graph.node)} nodes; output {output} {got.shape} differs from flowgrad's by at most {difference:.2e}")
    if not difference < 1e-4:
        raise SystemExit(1)


main()

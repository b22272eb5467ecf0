#!/usr/bin/python3
"""Backend-suite style cases for LSTM, GRU and RNN with sequence_lens (and with
layout = 1, batch first), which Debian's libonnx-testdata has none of.

    /usr/bin/python3 tests/compile/make_recurrent_cases.py --out DIR

writes DIR/<test name>/model.onnx and DIR/<test name>/test_data_set_0/input_K.pb,
output_K.pb, so `hepml conformance --data DIR` (and `--via compile`) runs them.
DIR is replaced.

Expected outputs come from ONNX's own numpy reference implementations of the
operators (onnx.backend.test.case.node.{lstm,gru,rnn}), which know neither
sequence_lens nor the reverse direction: each batch row b is run alone over
its first lens[b] steps (time-reversed for direction=reverse, the outputs
flipped back), Y is 0 past each row's length and Y_h is the state after the
row's last step, as the operators' definition says.
"""
import argparse
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test.case.node.gru import GRU_Helper
from onnx.backend.test.case.node.lstm import LSTM_Helper
from onnx.backend.test.case.node.rnn import RNN_Helper

OPSET = 14  # layout needs opset 14
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
HELPER = {"LSTM": LSTM_Helper, "GRU": GRU_Helper, "RNN": RNN_Helper}


def reference(op, x, params, lens, reverse, attrs):
    """Y [T, 1, B, H] and Y_h [1, B, H] of one direction, layout 0."""
    T, B, _ = x.shape
    H = params["R"].shape[-1]
    Y = np.zeros((T, 1, B, H), np.float32)
    Yh = np.zeros((1, B, H), np.float32)
    for b in range(B):
        L = int(lens[b])
        xb = x[:L, b:b + 1]
        if reverse:
            xb = xb[::-1]
        p = {}
        for k, v in params.items():
            p[k] = v[:, b:b + 1].copy() if k in ("initial_h", "initial_c") else v.copy()
        y, yh = HELPER[op](X=np.ascontiguousarray(xb), **p, **attrs).step()
        yb = np.asarray(y, np.float32)[:, 0, 0, :]
        if reverse:
            yb = yb[::-1]
        Y[:L, 0, b] = yb
        Yh[0, b] = np.asarray(yh, np.float32).reshape(-1)
    return Y, Yh


def write_case(out, name, op, T, B, I, H, lens, reverse=False, layout=0, with_bias=True, with_initial=True,
               lbr=0, seed=0):
    rng = np.random.default_rng(seed)
    G = GATES[op] * H
    x = rng.uniform(-1, 1, (T, B, I)).astype(np.float32)
    params = {
        "W": rng.uniform(-0.6, 0.6, (1, G, I)).astype(np.float32),
        "R": rng.uniform(-0.6, 0.6, (1, G, H)).astype(np.float32),
    }
    if with_bias:
        params["B"] = rng.uniform(-0.3, 0.3, (1, 2 * G)).astype(np.float32)
    if with_initial:
        params["initial_h"] = rng.uniform(-0.5, 0.5, (1, B, H)).astype(np.float32)
        if op == "LSTM":
            params["initial_c"] = rng.uniform(-0.5, 0.5, (1, B, H)).astype(np.float32)
    attrs = {"linear_before_reset": lbr} if op == "GRU" else {}
    Y, Yh = reference(op, x, params, np.asarray(lens), reverse, attrs)
    lens = np.asarray(lens, np.int32)

    # The model's operands in its layout.
    feeds = {"X": x if layout == 0 else np.transpose(x, (1, 0, 2)), "W": params["W"], "R": params["R"]}
    if with_bias:
        feeds["B"] = params["B"]
    feeds["sequence_lens"] = lens
    for k in ("initial_h", "initial_c"):
        if k in params:
            feeds[k] = params[k] if layout == 0 else np.transpose(params[k], (1, 0, 2))
    outs = {"Y": Y if layout == 0 else np.transpose(Y, (2, 0, 1, 3)),
            "Y_h": Yh if layout == 0 else np.transpose(Yh, (1, 0, 2))}

    order = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c"][:5 + (op == "LSTM") + 1]
    node_inputs = [k if k in feeds else "" for k in order]
    while node_inputs and node_inputs[-1] == "":
        node_inputs.pop()
    node_attrs = {"hidden_size": H}
    if reverse:
        node_attrs["direction"] = "reverse"
    if layout:
        node_attrs["layout"] = layout
    if op == "GRU" and lbr:
        node_attrs["linear_before_reset"] = lbr
    node = helper.make_node(op, node_inputs, ["Y", "Y_h"], **node_attrs)
    inputs = [k for k in node_inputs if k]
    elem = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32}
    graph = helper.make_graph(
        [node], name,
        [helper.make_tensor_value_info(k, elem[feeds[k].dtype], feeds[k].shape) for k in inputs],
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in outs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "test_data_set_0"))
    onnx.save(model, os.path.join(d, "model.onnx"))
    for i, k in enumerate(inputs):
        with open(os.path.join(d, "test_data_set_0", f"input_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(feeds[k], k).SerializeToString())
    for i, (k, v) in enumerate(outs.items()):
        with open(os.path.join(d, "test_data_set_0", f"output_{i}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(np.ascontiguousarray(v), k).SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    os.makedirs(a.out)
    write_case(a.out, "test_seqlens_lstm_forward", "LSTM", T=4, B=3, I=2, H=3, lens=[4, 2, 1], seed=1)
    write_case(a.out, "test_seqlens_lstm_reverse", "LSTM", T=4, B=3, I=3, H=2, lens=[3, 4, 1], reverse=True, seed=2)
    write_case(a.out, "test_seqlens_lstm_batchwise_reverse", "LSTM", T=5, B=2, I=2, H=4, lens=[2, 5], reverse=True,
               layout=1, seed=3)
    write_case(a.out, "test_seqlens_gru_forward", "GRU", T=4, B=3, I=2, H=3, lens=[1, 3, 4], seed=4)
    write_case(a.out, "test_seqlens_gru_reverse_linear_before_reset", "GRU", T=3, B=3, I=2, H=2, lens=[3, 1, 2],
               reverse=True, lbr=1, seed=5)
    write_case(a.out, "test_seqlens_rnn_batchwise", "RNN", T=4, B=3, I=2, H=3, lens=[2, 4, 3], layout=1, seed=6)
    write_case(a.out, "test_seqlens_rnn_no_bias_reverse", "RNN", T=3, B=2, I=3, H=2, lens=[1, 3], reverse=True,
               with_bias=False, with_initial=False, seed=7)


if __name__ == "__main__":
    main()

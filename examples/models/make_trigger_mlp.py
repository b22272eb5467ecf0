#!/usr/bin/env python3
"""Writes the bundled example: a small Level-1-trigger-style MLP (16 inputs ->
32 -> 32 -> 5 classes, ReLU, softmax) with a symbolic batch dimension, and a
sample input of 4 events. Weights are fixed by a seed so the file is
reproducible. Run with /usr/bin/python3 (python3-onnx, python3-numpy)."""
import os

import numpy as np
from onnx import TensorProto, checker, helper, numpy_helper

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2026)
sizes = [16, 32, 32, 5]
nodes, inits = [], []
prev = "features"
for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
    w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
    b = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"dense{i}.weight"), numpy_helper.from_array(b, f"dense{i}.bias")]
    out = f"dense{i}"
    nodes.append(helper.make_node("Gemm", [prev, f"dense{i}.weight", f"dense{i}.bias"], [out], name=f"dense{i}"))
    prev = out
    if i < len(sizes) - 2:
        nodes.append(helper.make_node("Relu", [prev], [f"relu{i}"], name=f"relu{i}"))
        prev = f"relu{i}"
nodes.append(helper.make_node("Softmax", [prev], ["class_probabilities"], name="softmax", axis=-1))
graph = helper.make_graph(
    nodes, "trigger_mlp",
    [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 16])],
    [helper.make_tensor_value_info("class_probabilities", TensorProto.FLOAT, ["batch", 5])],
    inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="hepml-example")
model.ir_version = 8
checker.check_model(model)
with open(os.path.join(here, "trigger_mlp.onnx"), "wb") as f:
    f.write(model.SerializeToString())
np.save(os.path.join(here, "trigger_mlp_input.npy"), rng.standard_normal((4, 16)).astype(np.float32))
print("wrote trigger_mlp.onnx and trigger_mlp_input.npy")

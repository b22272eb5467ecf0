#!/usr/bin/env python3
"""The hepml Python module against numpy: outputs equal to a numpy
evaluation of the example model (weights read with python3-onnx), inputs used
in place, read-only outputs, clear exceptions for wrong dtypes, layouts,
shapes, names and files, several threads on one Session, the docstrings and
the .pyi stub."""
import argparse
import ast
import os
import sys
import tempfile
import threading
import unittest

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

import hepml

SOURCE = None


def model_path():
    return os.path.join(SOURCE, "examples", "models", "trigger_mlp.onnx")


def numpy_reference(x):
    """trigger_mlp evaluated by numpy: Gemm, Relu and Softmax nodes in order."""
    m = onnx.load(model_path())
    values = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    values[m.graph.input[0].name] = x.astype(np.float64)
    for node in m.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        ins = [values[i] for i in node.input]
        if node.op_type == "Gemm":
            a, b = ins[0], ins[1]
            if attrs.get("transA"):
                a = a.T
            if attrs.get("transB"):
                b = b.T
            y = attrs.get("alpha", 1.0) * (a @ b)
            if len(ins) > 2:
                y = y + attrs.get("beta", 1.0) * ins[2]
        elif node.op_type == "Relu":
            y = np.maximum(ins[0], 0)
        elif node.op_type == "Softmax":
            z = ins[0] - ins[0].max(axis=attrs.get("axis", -1), keepdims=True)
            e = np.exp(z)
            y = e / e.sum(axis=attrs.get("axis", -1), keepdims=True)
        else:
            raise AssertionError(f"reference lacks {node.op_type}")
        values[node.output[0]] = y
    return values[m.graph.output[0].name]


def identity_model(path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity", [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


class SessionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.session = hepml.Session(model_path(), num_threads=1)

    def test_signature(self):
        self.assertEqual(self.session.inputs, [{"name": "features", "dtype": "float32", "shape": ["batch", 16],
                                                "kind": "tensor"}])
        self.assertEqual(self.session.outputs[0]["name"], "class_probabilities")
        self.assertEqual(self.session.outputs[0]["shape"], ["batch", 5])
        self.assertGreater(self.session.weight_bytes, 0)

    def test_outputs_match_numpy(self):
        x = np.load(os.path.join(SOURCE, "examples", "models", "trigger_mlp_input.npy"))
        (y,) = self.session.run({"features": x})
        self.assertEqual(y.dtype, np.float32)
        self.assertEqual(y.shape, (x.shape[0], 5))
        np.testing.assert_allclose(y, numpy_reference(x), rtol=1e-5, atol=1e-6)
        named = self.session.run({"features": x}, ["class_probabilities"])
        np.testing.assert_array_equal(named[0], y)

    def test_outputs_are_read_only_arrays_that_outlive_the_call(self):
        x = np.random.default_rng(1).standard_normal((7, 16)).astype(np.float32)
        (y,) = self.session.run({"features": x})
        self.assertFalse(y.flags.writeable)
        with self.assertRaises(ValueError):
            y[0, 0] = 1.0
        ref = numpy_reference(x)
        del x
        np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-6)
        z = y.copy()
        z[0, 0] = 1.0  # a copy is the caller's to change

    def test_input_used_in_place(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "identity.onnx")
            identity_model(path)
            s = hepml.Session(path, optimize=False)
            x = np.arange(6, dtype=np.float32).reshape(2, 3)
            (y,) = s.run({"x": x})
            np.testing.assert_array_equal(y, x)
            # Identity hands its input on: the output is the caller's memory,
            # so the input was never copied.
            self.assertTrue(np.shares_memory(x, y))

    def test_wrong_dtype_is_a_type_error(self):
        x = np.zeros((2, 16), dtype=np.float64)
        with self.assertRaises(TypeError) as e:
            self.session.run({"features": x})
        self.assertIn("features", str(e.exception))
        self.assertIn("float64", str(e.exception))
        self.assertIn("float32", str(e.exception))
        with self.assertRaises(TypeError) as e:
            self.session.run({"features": np.zeros((2, 16), dtype=">f4")})
        self.assertIn("features", str(e.exception))
        with self.assertRaises(TypeError) as e:
            self.session.run({"features": [[0.0] * 16]})
        self.assertIn("numpy.ndarray", str(e.exception))

    def test_non_contiguous_is_a_value_error(self):
        wide = np.zeros((4, 32), dtype=np.float32)
        with self.assertRaises(ValueError) as e:
            self.session.run({"features": wide[:, ::2]})
        self.assertIn("not C-contiguous", str(e.exception))
        with self.assertRaises(ValueError):
            self.session.run({"features": np.asfortranarray(np.ones((4, 16), dtype=np.float32))})
        # A contiguous copy of the same view runs.
        (y,) = self.session.run({"features": np.ascontiguousarray(wide[:, ::2])})
        self.assertEqual(y.shape, (4, 5))

    def test_bad_shape_name_and_file(self):
        with self.assertRaises(ValueError) as e:
            self.session.run({"features": np.zeros((2, 15), dtype=np.float32)})
        self.assertIn("features", str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.session.run({"jets": np.zeros((2, 16), dtype=np.float32)})
        self.assertIn("jets", str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.session.run({})
        self.assertIn("features", str(e.exception))
        with self.assertRaises(ValueError) as e:
            self.session.run({"features": np.zeros((1, 16), dtype=np.float32)}, ["nope"])
        self.assertIn("nope", str(e.exception))
        with self.assertRaises(Exception) as e:
            hepml.Session("/nonexistent/model.onnx")
        self.assertIn("/nonexistent/model.onnx", str(e.exception))
        with tempfile.NamedTemporaryFile(suffix=".onnx") as f:
            f.write(b"not a model")
            f.flush()
            with self.assertRaises(ValueError) as e:
                hepml.Session(f.name)
            self.assertIn(f.name, str(e.exception))
        with self.assertRaises(ValueError) as e:
            hepml.Session(model_path(), precision="fp8")
        self.assertIn("fp8", str(e.exception))

    def test_threads_share_one_session(self):
        rng = np.random.default_rng(2)
        xs = [rng.standard_normal((3, 16)).astype(np.float32) for _ in range(8)]
        refs = [numpy_reference(x) for x in xs]
        errors = []

        def work(i):
            for _ in range(50):
                (y,) = self.session.run({"features": xs[i]})
                if not np.allclose(y, refs[i], rtol=1e-5, atol=1e-6):
                    errors.append(i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

    def test_docstrings_and_stub(self):
        self.assertIn("C-contiguous", hepml.Session.run.__doc__)
        self.assertIn("num_threads", hepml.Session.__doc__)
        stub = os.path.join(os.path.dirname(hepml.__file__), "hepml.pyi")
        self.assertTrue(os.path.exists(stub), stub)
        tree = ast.parse(open(stub).read())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.assertIn("Session", classes)
        stub_members = {n.name for n in classes["Session"].body if isinstance(n, ast.FunctionDef)}
        for member in ("run", "inputs", "outputs", "weight_bytes"):
            self.assertIn(member, stub_members)
            self.assertTrue(hasattr(hepml.Session, member))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    args, rest = p.parse_known_args()
    SOURCE = args.source
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

#!/usr/bin/env python3
"""The hepml Python module against numpy: outputs equal to a numpy
evaluation of the example model (weights read with python3-onnx), inputs used
in place, read-only outputs, clear exceptions for wrong dtypes, layouts,
shapes, names and files, several threads on one Session, the docstrings and
the .pyi stub. Then RemoteSession against real `hepml serve` processes on
free loopback ports (and a closed port: the fallback or ConnectionError),
compile (the package built with g++ and its outputs compared), Registry on a
temporary registry as a training script uses it, and open_dataset on .npy and
CSV files written here and on the ROOT test files when they are there."""
import argparse
import ast
import ctypes
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

import hepml

SOURCE = None
HEPML = None  # the `hepml` command line (for `hepml serve`)
DATA = None   # HEPML_TEST_DATA_DIR: ROOT files under DATA/root


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
        with open(stub) as f:
            tree = ast.parse(f.read())
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        self.assertIn("Session", classes)
        stub_members = {n.name for n in classes["Session"].body if isinstance(n, ast.FunctionDef)}
        for member in ("run", "inputs", "outputs", "weight_bytes"):
            self.assertIn(member, stub_members)
            self.assertTrue(hasattr(hepml.Session, member))


SERVICES = hasattr(hepml, "RemoteSession")  # built with HEPML_SERVICES


def _die_with_parent():
    # The server goes with the test even when the test dies without cleaning
    # up (PR_SET_PDEATHSIG = 1).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class ServeProcess:
    """`hepml serve` on a free gRPC port (HTTP and metrics off); address is
    read from its "Started GRPCInferenceService at HOST:PORT" line."""

    STARTED = "Started GRPCInferenceService at "

    def __init__(self, repository):
        self.proc = subprocess.Popen(
            [HEPML, "serve", "--model-repository", repository, "--http-port", "-1", "--grpc-port", "0",
             "--metrics-port", "-1"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=_die_with_parent)
        self.address = None
        for line in self.proc.stdout:
            if self.STARTED in line:
                self.address = line.split(self.STARTED, 1)[1].strip()
                break
        # Keep draining its stdout so the server never blocks on a full pipe.
        self.reader = threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True)
        self.reader.start()
        if self.address is None:
            self.kill()  # the reader ends with the process
            raise AssertionError(f"hepml serve did not start (exit status {self.proc.returncode})")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait()
        if self.reader.is_alive():
            self.reader.join()
        self.proc.stdout.close()

    def stop(self):
        """SIGSTOP, then wait until every thread has stopped: the kernel
        stops a process's threads one by one, and on a loaded machine a
        thread can still answer a request sent right after kill()."""
        self.proc.send_signal(signal.SIGSTOP)  # accepts connections, answers nothing
        task = f"/proc/{self.proc.pid}/task"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = []
            for tid in os.listdir(task):
                try:
                    with open(f"{task}/{tid}/stat") as f:
                        states.append(f.read().rsplit(")", 1)[1].split()[0])
                except FileNotFoundError:
                    pass
            if states and all(s in ("T", "t") for s in states):
                return
            time.sleep(0.001)
        raise AssertionError("hepml serve did not stop within 30 s of SIGSTOP")

    def cont(self):
        self.proc.send_signal(signal.SIGCONT)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.kill()


def closed_address():
    """A loopback port nothing listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@unittest.skipUnless(SERVICES, "built without HEPML_SERVICES")
class RemoteSessionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = ServeProcess(os.path.join(SOURCE, "examples", "model_repository"))
        cls.x = np.random.default_rng(3).standard_normal((6, 16)).astype(np.float32)
        cls.ref = numpy_reference(cls.x)

    @classmethod
    def tearDownClass(cls):
        cls.server.kill()

    def test_runs_on_the_server(self):
        with hepml.RemoteSession([self.server.address], "trigger_mlp") as remote:
            # The signature came from the server.
            self.assertEqual(remote.inputs[0]["name"], "features")
            self.assertEqual(remote.inputs[0]["dtype"], "float32")
            self.assertEqual(remote.outputs[0]["name"], "class_probabilities")
            (y,) = remote.run({"features": self.x})
            self.assertFalse(y.flags.writeable)
            np.testing.assert_allclose(y, self.ref, rtol=1e-5, atol=1e-6)
            (named,) = remote.run({"features": self.x}, ["class_probabilities"])
            np.testing.assert_array_equal(named, y)
            stats = remote.stats()
            self.assertEqual((stats["calls"], stats["remote"], stats["fallback"], stats["failed"]), (2, 2, 0, 0))
        with self.assertRaises(ValueError) as e:
            remote.run({"features": self.x})
        self.assertIn("closed", str(e.exception))

    def test_threads_coalesced_into_batches(self):
        remote = hepml.RemoteSession([self.server.address], "trigger_mlp", max_batch_size=16, max_delay=0.002)
        rng = np.random.default_rng(4)
        xs = [rng.standard_normal((1, 16)).astype(np.float32) for _ in range(8)]
        refs = [numpy_reference(x) for x in xs]
        errors = []

        def work(i):
            for _ in range(20):
                (y,) = remote.run({"features": xs[i]})
                # Each caller gets its own rows of the batch's outputs.
                if y.shape != (1, 5) or not np.allclose(y, refs[i], rtol=1e-5, atol=1e-6):
                    errors.append(i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        stats = remote.stats()
        self.assertEqual(stats["calls"], 160)
        self.assertEqual(stats["remote"], 160)
        self.assertGreaterEqual(stats["batches"], 10)  # at most 16 calls per request
        self.assertLessEqual(stats["batches"], 160)
        self.assertAlmostEqual(stats["mean_batch_size"], 160 / stats["batches"])
        # Dropped while its completion thread may still hold the last input
        # arrays: the GIL is released for the wait, so this returns.
        del remote

    def test_unreachable_server_uses_the_fallback(self):
        address = closed_address()
        remote = hepml.RemoteSession([address], "trigger_mlp", fallback_model_path=model_path(), deadline=5.0)
        (y,) = remote.run({"features": self.x})
        np.testing.assert_allclose(y, self.ref, rtol=1e-5, atol=1e-6)
        stats = remote.stats()
        self.assertEqual((stats["remote"], stats["fallback"], stats["failed"]), (0, 1, 0))

    def test_unreachable_server_without_fallback_raises(self):
        address = closed_address()
        # The signature has to come from a server: none answers.
        with self.assertRaises(ConnectionError) as e:
            hepml.RemoteSession([address], "trigger_mlp", deadline=5.0)
        self.assertIn(address, str(e.exception))
        # A server that dies after Create: the call names it.
        with ServeProcess(os.path.join(SOURCE, "examples", "model_repository")) as server:
            remote = hepml.RemoteSession([server.address], "trigger_mlp", deadline=5.0)
            remote.run({"features": self.x})
            server.kill()
            with self.assertRaises(ConnectionError) as e:
                remote.run({"features": self.x})
            self.assertIn(server.address, str(e.exception))
            self.assertEqual(remote.stats()["failed"], 1)

    def test_server_that_does_not_answer_is_a_timeout(self):
        with ServeProcess(os.path.join(SOURCE, "examples", "model_repository")) as server:
            remote = hepml.RemoteSession([server.address], "trigger_mlp", deadline=0.5)
            remote.run({"features": self.x})
            server.stop()
            try:
                with self.assertRaises(TimeoutError) as e:
                    remote.run({"features": self.x})
                self.assertIn(server.address, str(e.exception))
            finally:
                server.cont()
            self.assertEqual(remote.stats()["failed"], 1)

    def test_bad_options_and_inputs(self):
        with self.assertRaises(ValueError) as e:
            hepml.RemoteSession([], "trigger_mlp")
        self.assertIn("no server", str(e.exception))
        with self.assertRaises(ValueError) as e:
            hepml.RemoteSession(["localhost"], "trigger_mlp")
        self.assertIn("localhost", str(e.exception))
        with self.assertRaises(ValueError) as e:
            hepml.RemoteSession([self.server.address], "trigger_mlp", deadline=-1)
        self.assertIn("deadline", str(e.exception))
        with self.assertRaises(Exception) as e:
            hepml.RemoteSession([self.server.address], "no_such_model", deadline=5.0)
        self.assertIn("no_such_model", str(e.exception))
        remote = hepml.RemoteSession([self.server.address], "trigger_mlp")
        with self.assertRaises(TypeError) as e:
            remote.run({"features": self.x.astype(np.float64)})
        self.assertIn("features", str(e.exception))
        with self.assertRaises(ValueError) as e:
            remote.run({"features": np.zeros((2, 15), dtype=np.float32)})
        self.assertIn("features", str(e.exception))
        with self.assertRaises(ValueError) as e:
            remote.run({"jets": self.x})
        self.assertIn("jets", str(e.exception))
        self.assertEqual(remote.stats()["remote"], 0)  # nothing was sent


@unittest.skipUnless(SERVICES, "built without HEPML_SERVICES")
class CompileTest(unittest.TestCase):
    def test_package_files_and_outputs(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "pkg")
            report = hepml.compile(model_path(), out, name="trigger", max_batch=8)
            self.assertEqual(report["name"], "trigger")
            self.assertEqual(sorted(report["files"]),
                             sorted(["trigger.h", "trigger.cc", "trigger.weights", "trigger_run.cc",
                                     "CMakeLists.txt"]))
            for f in report["files"]:
                self.assertTrue(os.path.isfile(os.path.join(out, f)), f)
            self.assertGreater(report["num_steps"], 0)
            self.assertGreater(report["weight_bytes"], 0)
            with open(os.path.join(out, "trigger.h")) as f:
                self.assertIn("class trigger", f.read())
            if shutil.which("g++") is None:
                self.skipTest("no g++ to build the package")
            exe = os.path.join(tmp, "trigger_run")
            weights = os.path.join(out, "trigger.weights")
            subprocess.run(["g++", "-std=c++17", "-O1", f'-DHEPML_WEIGHTS_FILE="{weights}"', "-I", out,
                            os.path.join(out, "trigger.cc"), os.path.join(out, "trigger_run.cc"), "-o", exe],
                           check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            x = np.random.default_rng(5).standard_normal((8, 16)).astype(np.float32)
            np.save(os.path.join(tmp, "x.npy"), x)
            got_dir = os.path.join(tmp, "got")
            subprocess.run([exe, "--input", f"features={os.path.join(tmp, 'x.npy')}", "--output-dir", got_dir],
                           check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            got = np.load(os.path.join(got_dir, "class_probabilities.npy"))
            (want,) = hepml.Session(model_path(), num_threads=1).run({"features": x})
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)

    def test_fp16_weights_are_smaller(self):
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = hepml.compile(pathlib.Path(model_path()), pathlib.Path(tmp) / "a")  # os.PathLike too
            fp16 = hepml.compile(model_path(), os.path.join(tmp, "b"), precision="fp16", embed_weights=True)
            self.assertEqual(fp32["name"], "trigger_mlp")  # the model file's stem
            self.assertNotIn("trigger_mlp.weights", fp16["files"])
            self.assertLess(fp16["weight_bytes"], fp32["weight_bytes"])

    def test_errors_name_the_cause(self):
        with tempfile.TemporaryDirectory() as tmp:
            with self.assertRaises(FileNotFoundError) as e:
                hepml.compile("/nonexistent/m.onnx", os.path.join(tmp, "x"))
            self.assertIn("/nonexistent/m.onnx", str(e.exception))
            with self.assertRaises(ValueError) as e:
                hepml.compile(model_path(), os.path.join(tmp, "x"), precision="fp8")
            self.assertIn("fp8", str(e.exception))
            with self.assertRaises(ValueError) as e:
                hepml.compile(model_path(), os.path.join(tmp, "x"), name="1bad")
            self.assertIn("1bad", str(e.exception))
            # A failed compile leaves nothing behind.
            self.assertFalse(os.path.exists(os.path.join(tmp, "x")))
            # A folder that is not a package is never replaced.
            busy = os.path.join(tmp, "busy")
            os.makedirs(busy)
            write_file(os.path.join(busy, "notes.txt"), "mine")
            with self.assertRaises(Exception) as e:
                hepml.compile(model_path(), busy)
            self.assertIn(busy, str(e.exception))
            self.assertTrue(os.path.exists(os.path.join(busy, "notes.txt")))


@unittest.skipUnless(SERVICES, "built without HEPML_SERVICES")
class RegistryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "registry")
        self.reg = hepml.Registry(self.dir, user="alice")

    def tearDown(self):
        del self.reg
        self.tmp.cleanup()

    def test_training_script(self):
        reg = self.reg
        run = reg.start_run("trigger-train", {"lr": 0.001, "epochs": 3, "optimizer": "adam"}, code_version="abc123")
        for epoch in range(3):
            reg.log_metric(run, "loss", 1.0 / (epoch + 1), step=epoch)
        reg.log_metric(run, "auc", 0.91, step=2)
        reg.log_param(run, "batch_size", 256)
        artifact = reg.log_artifact(run, pathlib.Path(model_path()))
        with self.assertRaises(ValueError) as e:
            reg.log_artifact(run, model_path(), name="../outside.onnx")
        self.assertIn("'../outside.onnx'", str(e.exception))
        self.assertEqual((artifact["name"], artifact["size"]), ("trigger_mlp.onnx", os.path.getsize(model_path())))
        reg.end_run(run, "finished", cpu_seconds=12.5)
        info = reg.get_run(run)
        self.assertEqual(info["name"], "trigger-train")
        self.assertEqual(info["status"], "finished")
        self.assertEqual(info["params"], {"lr": "0.001", "epochs": "3", "optimizer": "adam", "batch_size": "256"})
        self.assertEqual(info["metrics"]["loss"], [(0, 1.0), (1, 0.5), (2, 1.0 / 3)])
        self.assertEqual(info["metrics"]["auc"], [(2, 0.91)])
        self.assertEqual(info["created_by"], "alice")
        self.assertEqual(info["code_version"], "abc123")
        self.assertIsNotNone(info["end_ms"])
        self.assertEqual([a["name"] for a in info["artifacts"]], ["trigger_mlp.onnx"])
        back = os.path.join(self.tmp.name, "artifact.onnx")
        self.assertEqual(reg.get_artifact(run, "trigger_mlp.onnx", back)["size"], os.path.getsize(model_path()))
        with open(back, "rb") as a, open(model_path(), "rb") as b:
            self.assertEqual(a.read(), b.read())
        with self.assertRaises(FileNotFoundError) as e:
            reg.get_artifact(run, "nope.txt", back)
        self.assertIn("nope.txt", str(e.exception))

        # The model is created on the first push.
        v1 = reg.push("trigger", model_path(), params={"lr": 0.001}, metrics={"auc": 0.91}, run=run,
                      description="L1 trigger MLP")
        self.assertEqual((v1["model"], v1["version"], v1["ref"]), ("trigger", 1, "trigger@1"))
        self.assertEqual(v1["run"], run)
        self.assertEqual(v1["metrics"], {"auc": 0.91})
        self.assertEqual(v1["params"], {"lr": "0.001"})
        self.assertEqual(list(v1["inputs"]), ["features"])
        self.assertIn("float", v1["inputs"]["features"])
        self.assertEqual(v1["files"][0]["name"], "trigger_mlp.onnx")
        self.assertEqual(v1["files"][0]["size"], os.path.getsize(model_path()))
        self.assertEqual([m["name"] for m in reg.models()], ["trigger"])
        self.assertEqual(reg.models()[0]["description"], "L1 trigger MLP")
        v2 = reg.push("trigger", [model_path()], metrics={"auc": 0.93})
        self.assertEqual(v2["version"], 2)
        self.assertIsNone(v2["run"])
        self.assertEqual([v["version"] for v in reg.versions("trigger")], [1, 2])

        reg.set_alias("trigger", "production", 1)
        self.assertEqual(reg.resolve_alias("trigger", "production")["version"], 1)
        self.assertEqual(reg.resolve_ref("trigger@production")["version"], 1)
        self.assertEqual(reg.resolve_ref("trigger")["version"], 2)  # the latest
        self.assertIn("production", reg.get_version("trigger", 1)["aliases"])
        reg.set_alias("trigger", "production", 2)
        self.assertEqual(reg.resolve_alias("trigger", "production")["version"], 2)

        reg.add_interval("trigger_2026", "trigger", 1, 1000, 1999)
        reg.add_interval("trigger_2026", "trigger", 2, 2000, 2999)
        iov = reg.resolve("trigger_2026", 2500)
        self.assertEqual((iov["model"], iov["version"], iov["first_run"], iov["last_run"]), ("trigger", 2, 2000, 2999))
        self.assertEqual(reg.resolve("trigger_2026", 1000)["version"], 1)
        self.assertEqual(len(reg.intervals("trigger_2026")), 2)
        with self.assertRaises(FileNotFoundError) as e:
            reg.resolve("trigger_2026", 5000)
        self.assertIn("5000", str(e.exception))

        dest = os.path.join(self.tmp.name, "pulled.onnx")
        self.assertEqual(reg.pull("trigger@production", dest), [dest])
        with open(dest, "rb") as a, open(model_path(), "rb") as b:
            self.assertEqual(a.read(), b.read())
        # The pulled model runs.
        (y,) = hepml.Session(dest).run({"features": np.zeros((1, 16), dtype=np.float32)})
        self.assertEqual(y.shape, (1, 5))

        # A fine-tuning run reads a model version: lineage goes through it.
        tune = reg.start_run("trigger-tune", models=["trigger@1"])
        self.assertEqual(reg.get_run(tune)["model_inputs"], ["trigger@1"])
        self.assertEqual(reg.get_run(run)["model_inputs"], [])
        with self.assertRaises(ValueError) as e:
            reg.start_run("bad", models=["trigger"])
        self.assertIn("'trigger'", str(e.exception))
        with self.assertRaises(FileNotFoundError) as e:
            reg.start_run("bad", models=["trigger@9"])
        self.assertIn("9", str(e.exception))

        # Another Registry on the same folder sees it all.
        again = hepml.Registry(pathlib.Path(self.dir), create_if_missing=False)
        self.assertEqual(again.resolve_alias("trigger", "production")["version"], 2)
        self.assertEqual(again.get_run(run)["status"], "finished")

    def test_errors_name_the_cause(self):
        reg = self.reg
        missing = os.path.join(self.tmp.name, "missing.onnx")
        with self.assertRaises(FileNotFoundError) as e:
            reg.push("trigger", missing)
        self.assertIn(missing, str(e.exception))
        bad = os.path.join(self.tmp.name, "bad.onnx")
        write_file(bad, b"not a model")
        with self.assertRaises(ValueError) as e:
            reg.push("trigger", bad)
        self.assertIn(bad, str(e.exception))
        reg.push("trigger", model_path())
        with self.assertRaises(Exception) as e:
            reg.push("trigger", model_path(), version=1)  # published versions are immutable
        self.assertIn("1", str(e.exception))
        with self.assertRaises(Exception) as e:
            reg.set_alias("trigger", "production", 7)
        self.assertIn("7", str(e.exception))
        with self.assertRaises(FileNotFoundError) as e:
            reg.resolve_alias("trigger", "nope")
        self.assertIn("nope", str(e.exception))
        with self.assertRaises(FileNotFoundError):
            reg.get_run(12345)
        with self.assertRaises(Exception) as e:
            run = reg.start_run("r")
            reg.end_run(run, "exploded")
        self.assertIn("exploded", str(e.exception))
        with self.assertRaises(ValueError) as e:
            reg.start_run("r", inputs=["no-version"])
        self.assertIn("no-version", str(e.exception))
        with self.assertRaises(FileNotFoundError) as e:
            hepml.Registry(os.path.join(self.tmp.name, "typo"), create_if_missing=False)
        self.assertIn("typo", str(e.exception))
        with self.assertRaises(ValueError):
            hepml.Registry()
        with self.assertRaises(Exception) as e:
            hepml.Registry(metadata_uri="mysql://x/y", blob_uri="file:///tmp/x")
        self.assertIn("mysql", str(e.exception))

    def test_uris(self):
        db = os.path.join(self.tmp.name, "meta.db")
        blobs = os.path.join(self.tmp.name, "blobs")
        reg = hepml.Registry(metadata_uri=f"sqlite://{db}", blob_uri=f"file://{blobs}")
        v = reg.push("m", model_path())
        self.assertEqual(v["version"], 1)
        self.assertTrue(os.path.exists(db))
        self.assertTrue(os.path.isdir(blobs))


def root_file(name):
    """DATA/root/NAME when it is there, else None."""
    path = os.path.join(DATA, "root", name) if DATA else None
    return path if path and os.path.exists(path) else None


def write_file(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)


@unittest.skipUnless(SERVICES, "built without HEPML_SERVICES")
class DatasetTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_npy_batches(self):
        x = np.arange(100 * 3, dtype=np.float32).reshape(100, 3)
        path = os.path.join(self.tmp.name, "features.npy")
        np.save(path, x)
        ds = hepml.open_dataset(path, batch_size=32)
        self.assertEqual(ds.num_entries, 100)
        self.assertEqual(len(ds), 100)
        (col,) = ds.schema
        self.assertEqual((col["name"], col["dtype"], col["shape"], col["jagged"]), ("features", "float32", [3], False))
        batches = list(ds)
        self.assertEqual([b["features"].shape[0] for b in batches], [32, 32, 32, 4])
        np.testing.assert_array_equal(np.concatenate([b["features"] for b in batches]), x)
        self.assertTrue(batches[0]["features"].flags.writeable)  # the batch's own memory
        # file:// URLs, two files as one dataset, an entry range.
        ds2 = hepml.open_dataset(["file://" + path, path], entry_start=90, entry_stop=110)
        (b,) = list(ds2.batches(batch_size=1000))
        np.testing.assert_array_equal(b["features"], np.concatenate([x[90:], x[:10]]))
        np.testing.assert_array_equal(ds.read(5, 7)["features"], x[5:7])

        # Threads sharing the Dataset and iterating it at once each get every batch.
        results, errors = [], []

        def work():
            try:
                results.append(np.concatenate([b["features"] for b in ds.batches(batch_size=7)]))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 4)
        for r in results:
            np.testing.assert_array_equal(r, x)

    def test_csv_columns(self):
        path = os.path.join(self.tmp.name, "jets.csv")
        with open(path, "w") as f:
            f.write("pt,eta,n\n")
            for i in range(10):
                f.write(f"{10.5 + i},{-1.25 + 0.25 * i},{i}\n")
        ds = hepml.open_dataset(path, columns=["n", "pt"], batch_size=4)
        names = [c["name"] for c in ds.schema]
        self.assertEqual(sorted(names), ["eta", "n", "pt"])
        batches = list(ds)
        self.assertEqual(len(batches), 3)
        self.assertEqual(list(batches[0]), ["n", "pt"])  # the columns asked for, in that order
        n = np.concatenate([b["n"] for b in batches])
        pt = np.concatenate([b["pt"] for b in batches])
        np.testing.assert_array_equal(n, np.arange(10))
        np.testing.assert_allclose(pt, 10.5 + np.arange(10))
        self.assertEqual(n.dtype, np.int64)
        self.assertEqual(pt.dtype, np.float64)

    def test_errors_name_the_cause(self):
        missing = os.path.join(self.tmp.name, "missing.npy")
        with self.assertRaises(FileNotFoundError) as e:
            hepml.open_dataset(missing)
        self.assertIn(missing, str(e.exception))
        with self.assertRaises(Exception) as e:
            hepml.open_dataset("gopher://host/file.root")
        self.assertIn("gopher", str(e.exception))
        bad = os.path.join(self.tmp.name, "bad.npy")
        write_file(bad, b"\x93NUMPY garbage")
        with self.assertRaises(Exception) as e:
            hepml.open_dataset(bad)
        self.assertIn(bad, str(e.exception))
        path = os.path.join(self.tmp.name, "x.npy")
        np.save(path, np.zeros((4, 2), dtype=np.float32))
        with self.assertRaises(KeyError) as e:
            hepml.open_dataset(path, columns=["nope"])
        self.assertIn("nope", str(e.exception))
        with self.assertRaises(ValueError) as e:
            hepml.open_dataset(path, batch_size=0)
        self.assertIn("batch_size", str(e.exception))
        with self.assertRaises(ValueError) as e:
            hepml.open_dataset(path, format="parquet")
        self.assertIn("parquet", str(e.exception))
        with self.assertRaises(ValueError):
            hepml.open_dataset(path).read(0, 50)  # past the end

    def test_root_jagged_columns(self):
        path = root_file("uproot-sample-6.20.04-lz4.root")
        if path is None:
            self.skipTest("ROOT test files not there")
        ds = hepml.open_dataset(path, columns=["Ai4", "n"], batch_size=4)
        schema = {c["name"]: c for c in ds.schema}
        self.assertTrue(schema["Ai4"]["jagged"])
        self.assertEqual(schema["Ai4"]["dtype"], "int32")
        self.assertEqual(schema["n"]["jagged"], False)
        first = next(iter(ds))
        values, offsets = first["Ai4"]
        # Entries 0..3 hold 0..3 items: [], [-15], [-15,-13], [-15,-13,-11].
        np.testing.assert_array_equal(offsets, [0, 0, 1, 3, 6])
        np.testing.assert_array_equal(values, [-15, -15, -13, -15, -13, -11])
        np.testing.assert_array_equal(first["n"], [0, 1, 2, 3])
        total = sum(b["n"].shape[0] for b in ds)
        self.assertEqual(total, ds.num_entries)
        # Padded to 3 with a mask.
        padded = hepml.open_dataset(path, columns=["Ai4"], pad_length=3).read(1, 5)
        values, mask = padded["Ai4"]
        self.assertEqual(values.shape, (4, 3))
        self.assertEqual(mask.dtype, np.bool_)
        np.testing.assert_array_equal(mask, [[1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 1, 1]])
        np.testing.assert_array_equal(values[2], [-15, -13, -11])
        with self.assertRaises(Exception) as e:
            hepml.open_dataset(path, tree="nope")
        self.assertIn("nope", str(e.exception))

    def test_root_tree_feeds_a_model_batch(self):
        path = root_file("uproot-Zmumu-zstd.root")
        if path is None:
            self.skipTest("ROOT test files not there")
        ds = hepml.open_dataset(path, tree="events", columns=["px1", "py1", "pz1", "E1"], batch_size=1000)
        self.assertEqual(ds.num_entries, 2304)
        n = 0
        for batch in ds:
            x = np.stack([batch[c] for c in ("px1", "py1", "pz1", "E1")], axis=1)
            e = batch["E1"]
            # E >= |p| for muons (up to the file's float rounding).
            p = np.sqrt(batch["px1"] ** 2 + batch["py1"] ** 2 + batch["pz1"] ** 2)
            self.assertTrue(np.all(e >= p * (1 - 1e-6) - 1e-3))
            n += x.shape[0]
        self.assertEqual(n, 2304)


PROTOCOL = ("__iter__", "__next__", "__len__", "__enter__", "__exit__")


class ModuleStubTest(unittest.TestCase):
    def test_stub_covers_the_module(self):
        stub = os.path.join(os.path.dirname(hepml.__file__), "hepml.pyi")
        with open(stub) as f:
            tree = ast.parse(f.read())
        names = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
        classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
        for name in dir(hepml):
            if name.startswith("_"):
                continue
            self.assertIn(name, names, f"hepml.{name} is not in hepml.pyi")
            obj = getattr(hepml, name)
            self.assertTrue(obj.__doc__, f"hepml.{name} has no docstring")
            if isinstance(obj, type):
                members = {n.name for n in classes[name].body if isinstance(n, ast.FunctionDef)}
                for member in dir(obj):
                    if member.startswith("_") and member not in PROTOCOL:
                        continue
                    self.assertIn(member, members, f"hepml.{name}.{member} is not in hepml.pyi")
                    if member in PROTOCOL:
                        continue
                    self.assertTrue(getattr(obj, member).__doc__, f"hepml.{name}.{member} has no docstring")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--source", required=True)
    p.add_argument("--hepml", help="the hepml command line (for the RemoteSession tests)")
    p.add_argument("--data", help="HEPML_TEST_DATA_DIR (ROOT files under DATA/root)")
    args, rest = p.parse_known_args()
    SOURCE = args.source
    HEPML = args.hepml
    DATA = args.data
    if SERVICES and not HEPML:
        p.error("--hepml is needed to test RemoteSession")
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)

"""Starts `hepml serve` on free loopback ports and talks to it: HTTP through
curl, gRPC through grpcio with stubs generated from the project's .proto
files. Shared by the serve integration tests; run with /usr/bin/python3."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
PROTO_DIR = os.path.join(SOURCE, "src", "serve", "proto")
TRIGGER_MLP = os.path.join(SOURCE, "examples", "models", "trigger_mlp.onnx")
TRIGGER_INPUT = os.path.join(SOURCE, "examples", "models", "trigger_mlp_input.npy")


# Temporary folders and server logs, removed when every check passed (kept
# for a look otherwise).
TEMPORARIES = []


def temp_dir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    TEMPORARIES.append(d)
    return d


class Failures:
    def __init__(self):
        self.items = []

    def check(self, cond, what):
        if not cond:
            self.items.append(what)
            print("FAIL:", what, flush=True)
        return cond

    def finish(self):
        if self.items:
            print(f"{len(self.items)} check(s) failed; files kept: {' '.join(TEMPORARIES)}", flush=True)
            sys.exit(1)
        for path in TEMPORARIES:
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.unlink(path)
        print("all checks passed", flush=True)


class Server:
    """`hepml serve` as a child process on ports picked by the kernel."""

    def __init__(self, hepml, repos, extra=()):
        self.log_path = tempfile.mktemp(prefix="hepml-serve-", suffix=".log")
        TEMPORARIES.append(self.log_path)
        self.log = open(self.log_path, "w")
        cmd = [hepml, "serve", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0"]
        for r in repos:
            cmd += ["--model-repository", r]
        cmd += list(extra)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.ports = {}
        deadline = time.time() + 120
        while len(self.ports) < 3 and time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(r"Started (\S+)(?: Service)? at ([\d.]+):(\d+)", line.strip())
            if m:
                self.ports[m.group(1)] = int(m.group(3))
        if len(self.ports) < 3:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {self.ports}\n{self.read_log()}")
        self.http = f"http://127.0.0.1:{self.ports['HTTPService']}"
        self.grpc_target = f"127.0.0.1:{self.ports['GRPCInferenceService']}"
        self.metrics = f"http://127.0.0.1:{self.ports['Metrics']}/metrics"

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            code, _, _ = curl(self.http + "/v2/health/ready")
            if code == 200:
                return True
            time.sleep(0.1)
        return False

    def alive(self):
        return self.proc.poll() is None and curl(self.http + "/v2/health/live")[0] == 200

    def stop(self, timeout=60):
        """SIGTERM; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None


def curl(url, method=None, data=None, headers=None, data_file=None):
    """(status code, body bytes, response headers dict) through curl."""
    with tempfile.NamedTemporaryFile() as body, tempfile.NamedTemporaryFile() as hdr:
        cmd = ["curl", "-s", "-o", body.name, "-D", hdr.name, "-w", "%{http_code}", "--max-time", "60"]
        if method:
            cmd += ["-X", method]
        for k, v in (headers or {}).items():
            cmd += ["-H", f"{k}: {v}"]
        tmp = None
        if data is not None:
            tmp = tempfile.NamedTemporaryFile(delete=False)
            tmp.write(data if isinstance(data, bytes) else data.encode())
            tmp.close()
            data_file = tmp.name
        if data_file is not None:
            cmd += ["--data-binary", "@" + data_file]
        cmd.append(url)
        out = subprocess.run(cmd, capture_output=True, text=True)
        if tmp:
            os.unlink(tmp.name)
        code = int(out.stdout or 0)
        headers = {}
        for line in open(hdr.name, errors="replace"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return code, open(body.name, "rb").read(), headers


def curl_json(url, method=None, body=None):
    code, data, _ = curl(url, method=method, data=None if body is None else json.dumps(body))
    try:
        return code, json.loads(data) if data else None
    except ValueError:
        return code, data


def grpc_stubs(workdir):
    """Generates Python modules from the project's protos; returns
    (grpc_service_pb2, grpc_service_pb2_grpc, model_config_pb2)."""
    out = os.path.join(workdir, "pystubs")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", PROTO_DIR, f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    os.path.join(PROTO_DIR, "model_config.proto"),
                    os.path.join(PROTO_DIR, "grpc_service.proto")], check=True)
    sys.path.insert(0, out)
    import grpc_service_pb2  # noqa: E402
    import grpc_service_pb2_grpc  # noqa: E402
    import model_config_pb2  # noqa: E402
    return grpc_service_pb2, grpc_service_pb2_grpc, model_config_pb2


def scale_model(path, factor):
    """y = x * factor on float[batch, 4]: the answer tells the version."""
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [float(factor)])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "scale", [x], [y], [k])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def make_repository(root, models):
    """models: {name: (config text or None, {version: onnx path})}."""
    os.makedirs(root, exist_ok=True)
    for name, (config, versions) in models.items():
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        if config is not None:
            with open(os.path.join(d, "config.pbtxt"), "w") as f:
                f.write(config)
        for v, path in versions.items():
            os.makedirs(os.path.join(d, str(v)), exist_ok=True)
            with open(path, "rb") as src, open(os.path.join(d, str(v), "model.onnx"), "wb") as dst:
                dst.write(src.read())
    return root


def hepml_run(hepml, model, inputs, workdir):
    """Outputs of `hepml run` on `inputs` ({name: array}) as {name: array}."""
    import numpy as np
    args = [hepml, "run", model, "-o", os.path.join(workdir, "run-out")]
    for name, arr in inputs.items():
        p = os.path.join(workdir, f"in-{name}.npy")
        np.save(p, arr)
        args += ["--input", f"{name}={p}"]
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    result = {}
    for line in out.stdout.splitlines():
        name, rest = line.split(": ", 1)
        result[name] = np.load(rest.split(" -> ")[1])
    return result

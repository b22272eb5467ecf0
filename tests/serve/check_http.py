#!/usr/bin/env python3
"""`hepml serve` over HTTP/REST (KServe v2) with curl: health, metadata,
config, JSON and binary inference checked against `hepml run`, Triton's
error codes for bad requests (the server stays alive), statistics, metrics,
and SIGTERM answering requests in flight before exiting 0."""
import argparse
import concurrent.futures
import json
import os
import struct
import tempfile
import time

import numpy as np

from serve_harness import (TRIGGER_INPUT, TRIGGER_MLP, Failures, Server, curl, curl_json, hepml_run,
                           make_repository, temp_dir)

CONFIG = """
name: "trigger_mlp"
backend: "onnxruntime"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ]
dynamic_batching { max_queue_delay_microseconds: 20000 }
instance_group [ { count: 1 kind: KIND_CPU } ]
"""
# Requests wait up to ten minutes for a batch of 64: SIGTERM finds them
# queued, and must run them at once.
QUEUED_CONFIG = """
max_batch_size: 64
dynamic_batching { max_queue_delay_microseconds: 600000000 }
"""


def binary_request(x, outputs_binary=True, declared=None):
    header = {"inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32",
                          "parameters": {"binary_data_size": declared if declared is not None else x.nbytes}}],
              "outputs": [{"name": "class_probabilities", "parameters": {"binary_data": outputs_binary}}]}
    h = json.dumps(header).encode()
    return h, x.astype("<f4").tobytes(), {"Inference-Header-Content-Length": str(len(h)),
                                           "Content-Type": "application/octet-stream"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-http-")
    repo = make_repository(os.path.join(work, "repo"), {"trigger_mlp": (CONFIG, {1: TRIGGER_MLP}),
                                                        "queued_mlp": (QUEUED_CONFIG, {1: TRIGGER_MLP})})
    x = np.load(TRIGGER_INPUT)
    expected = hepml_run(args.hepml, TRIGGER_MLP, {"features": x}, work)["class_probabilities"]

    server = Server(args.hepml, [repo])
    try:
        f.check(server.wait_ready(), "server ready")
        base = server.http
        f.check(curl(base + "/v2/health/live")[0] == 200, "live is 200")

        code, meta = curl_json(base + "/v2")
        f.check(code == 200 and meta["name"] == "hepml" and "binary_tensor_data" in meta["extensions"],
                f"server metadata: {code} {meta}")

        code, meta = curl_json(base + "/v2/models/trigger_mlp")
        f.check(code == 200 and meta["versions"] == ["1"] and meta["platform"] == "onnxruntime_onnx",
                f"model metadata: {code} {meta}")
        f.check(code == 200 and meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 16]}],
                f"model metadata inputs: {meta}")
        f.check(code == 200 and meta["outputs"] == [{"name": "class_probabilities", "datatype": "FP32", "shape": [-1, 5]}],
                f"model metadata outputs: {meta}")
        f.check(curl(base + "/v2/models/trigger_mlp/versions/1")[0] == 200, "versioned metadata")
        f.check(curl(base + "/v2/models/trigger_mlp/ready")[0] == 200, "model ready")
        f.check(curl(base + "/v2/models/trigger_mlp/versions/1/ready")[0] == 200, "model version ready")
        f.check(curl(base + "/v2/models/trigger_mlp/versions/7/ready")[0] != 200, "unknown version not ready")

        code, config = curl_json(base + "/v2/models/trigger_mlp/config")
        f.check(code == 200 and config["max_batch_size"] == 64 and config["input"][0]["dims"] == [16]
                and config["dynamic_batching"]["max_queue_delay_microseconds"] == 20000,
                f"config: {code} {config}")

        # JSON inference, nested data.
        body = {"id": "req-1", "inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32",
                                            "data": x.tolist()}]}
        code, res = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", body)
        ok = code == 200 and res["outputs"][0]["name"] == "class_probabilities"
        f.check(ok, f"JSON infer: {code} {res}")
        if ok:
            out = res["outputs"][0]
            got = np.array(out["data"], dtype=np.float32).reshape(out["shape"])
            f.check(out["datatype"] == "FP32" and out["shape"] == [4, 5], f"JSON output shape {out['shape']}")
            f.check(np.allclose(got, expected, atol=1e-6), "JSON output equals hepml run")
            f.check(res["id"] == "req-1" and res["model_name"] == "trigger_mlp" and res["model_version"] == "1",
                    f"response id/name/version: {res}")

        # Binary tensor data extension: binary in, binary out.
        h, data, headers = binary_request(x)
        code, raw, rh = curl(base + "/v2/models/trigger_mlp/versions/1/infer", "POST", h + data, headers)
        ok = code == 200 and "inference-header-content-length" in rh
        f.check(ok, f"binary infer: {code} {raw[:200]} {rh}")
        if ok:
            n = int(rh["inference-header-content-length"])
            header = json.loads(raw[:n])
            out = header["outputs"][0]
            size = out["parameters"]["binary_data_size"]
            got = np.frombuffer(raw[n:n + size], dtype="<f4").reshape(out["shape"])
            f.check(size == expected.nbytes and np.allclose(got, expected, atol=1e-6), "binary output equals hepml run")
        # Binary in, JSON out.
        h, data, headers = binary_request(x, outputs_binary=False)
        code, raw, rh = curl(base + "/v2/models/trigger_mlp/infer", "POST", h + data, headers)
        ok = code == 200
        f.check(ok, f"binary in, JSON out: {code} {raw[:200]}")
        if ok:
            out = json.loads(raw)["outputs"][0]
            f.check(np.allclose(np.array(out["data"], dtype=np.float32).reshape(4, 5), expected, atol=1e-6),
                    "binary in / JSON out equals hepml run")

        # Bad requests: Triton's codes, an error message, and the server lives on.
        def expect_error(what, want, url, body=None, raw=None, headers=None, method="POST"):
            if raw is None and body is not None:
                raw = json.dumps(body).encode()
            code, data, _ = curl(url, method, raw, headers)
            try:
                msg = json.loads(data).get("error", "")
            except ValueError:
                msg = ""
            f.check(code == want and msg, f"{what}: want {want} and an error, got {code} {data[:300]}")
            f.check(server.alive(), f"alive after {what}")
            return msg

        infer = base + "/v2/models/trigger_mlp/infer"
        good = {"name": "features", "shape": [1, 16], "datatype": "FP32", "data": [0.5] * 16}
        msg = expect_error("unknown model", 404, base + "/v2/models/nope/infer", {"inputs": [good]})
        f.check("nope" in msg, f"unknown model message names it: {msg}")
        expect_error("unknown model metadata", 404, base + "/v2/models/nope", method="GET")
        expect_error("unknown version", 404, base + "/v2/models/trigger_mlp/versions/9/infer", {"inputs": [good]})
        msg = expect_error("wrong shape", 400, infer, {"inputs": [dict(good, shape=[1, 15], data=[0.5] * 15)]})
        f.check("features" in msg, f"wrong shape message names the input: {msg}")
        msg = expect_error("wrong dtype", 400, infer, {"inputs": [dict(good, datatype="FP64")]})
        f.check("FP64" in msg, f"wrong dtype message: {msg}")
        expect_error("unknown datatype", 400, infer, {"inputs": [dict(good, datatype="FLOAT")]})
        expect_error("data/shape mismatch", 400, infer, {"inputs": [dict(good, data=[0.5] * 3)]})
        expect_error("string data for FP32", 400, infer, {"inputs": [dict(good, data=["a"] * 16)]})
        expect_error("batch too large", 400, infer,
                     {"inputs": [dict(good, shape=[65, 16], data=[0.5] * (65 * 16))]})
        expect_error("unknown input", 400, infer, {"inputs": [good, dict(good, name="jets")]})
        expect_error("missing input", 400, infer, {"inputs": []})
        expect_error("unknown output", 400, infer, {"inputs": [good], "outputs": [{"name": "p"}]})
        expect_error("negative dim", 400, infer, {"inputs": [dict(good, shape=[-1, 16])]})
        expect_error("huge shape", 400, infer, {"inputs": [dict(good, shape=[1 << 40, 1 << 40])]})
        expect_error("malformed JSON", 400, infer, raw=b'{"inputs": [')
        expect_error("JSON not an object", 400, infer, raw=b'[1, 2]')
        expect_error("inputs of the wrong type", 400, infer, raw=b'{"inputs": [{"name": 3, "shape": "x", "datatype": 1}]}')
        h, data, headers = binary_request(x)
        expect_error("truncated binary", 400, infer, raw=h + data[:-7], headers=headers)
        h, data, headers = binary_request(x, declared=x.nbytes - 4)
        expect_error("binary size not matching the shape", 400, infer, raw=h + data[:-4], headers=headers)
        expect_error("header length past the body", 400, infer, raw=h,
                     headers={"Inference-Header-Content-Length": str(len(h) + 100)})
        expect_error("extra binary data", 400, infer, raw=h + data + b"junk", headers=headers)
        expect_error("unknown path", 404, base + "/v3/foo", method="GET")
        # Malformed HTTP itself (not a request line).
        import socket
        s = socket.create_connection(("127.0.0.1", server.ports["HTTPService"]))
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        s.settimeout(10)
        try:
            reply = s.recv(100)
        except OSError:
            reply = b""
        s.close()
        f.check(reply.startswith(b"HTTP/1.1 400"), f"malformed HTTP gets 400: {reply[:40]}")
        f.check(server.alive(), "alive after malformed HTTP")

        # Still serving correct answers after all that.
        code, res = curl_json(infer, "POST", {"inputs": [{"name": "features", "shape": [4, 16], "datatype": "FP32",
                                                          "data": x.flatten().tolist()}]})
        f.check(code == 200 and np.allclose(np.array(res["outputs"][0]["data"]).reshape(4, 5), expected, atol=1e-6),
                "correct answer after bad requests")

        # Statistics and metrics count what happened.
        code, stats = curl_json(base + "/v2/models/trigger_mlp/stats")
        ok = code == 200 and len(stats["model_stats"]) == 1
        f.check(ok, f"stats: {code} {stats}")
        if ok:
            s = stats["model_stats"][0]
            success = s["inference_stats"]["success"]["count"]
            f.check(success == 4, f"4 successful requests, stats say {success}")
            f.check(s["inference_count"] == 16, f"16 inferences (4 requests x 4 events): {s['inference_count']}")
            f.check(s["inference_stats"]["fail"]["count"] >= 5, f"failures counted: {s['inference_stats']['fail']}")
        code, text, _ = curl(server.metrics)
        text = text.decode()
        f.check(code == 200, f"metrics: {code}")
        for name in ["nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count",
                     "nv_inference_exec_count", "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
                     "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
                     "nv_inference_compute_output_duration_us"]:
            f.check(f'{name}{{model="trigger_mlp",version="1"}} ' in text, f"metric {name} present")
        f.check('nv_inference_request_success{model="trigger_mlp",version="1"} 4\n' in text,
                "metric success count 4")
        f.check('nv_inference_count{model="trigger_mlp",version="1"} 16\n' in text, "metric inference count 16")

        # SIGTERM while requests wait in the batcher's queue: each is
        # answered, then the server exits 0.
        queued = base + "/v2/models/queued_mlp/infer"

        def one(i):
            body = {"inputs": [{"name": "features", "shape": [1, 16], "datatype": "FP32", "data": x[i % 4].tolist()}]}
            return curl_json(queued, "POST", body)

        pending_metric = 'nv_inference_pending_request_count{model="queued_mlp",version="1"} 8\n'
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(one, i) for i in range(8)]
            deadline = time.time() + 60
            while time.time() < deadline and pending_metric not in curl(server.metrics)[1].decode():
                time.sleep(0.02)
            f.check(pending_metric in curl(server.metrics)[1].decode(), "8 requests pending before SIGTERM")
            rc = server.stop()
            answers = [fu.result() for fu in futures]
        f.check(rc == 0, f"exit code after SIGTERM: {rc}\n{server.read_log()[-2000:]}")
        f.check(all(code == 200 for code, _ in answers), f"queued requests answered: {[c for c, _ in answers]}")
        f.check(all(np.allclose(np.array(res["outputs"][0]["data"]), expected[i % 4], atol=1e-6)
                    for i, (code, res) in enumerate(answers) if code == 200), "queued requests got their outputs")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    f.finish()


if __name__ == "__main__":
    main()

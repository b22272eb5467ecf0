#!/usr/bin/env python3
"""Load generator for `hepml serve` (or any KServe v2 / Triton server):
closed-loop clients, each in its own process with its own connection, send
requests of one model for a fixed time and report requests/s, inferences/s
and latency percentiles. Not a test.

  /usr/bin/python3 bench/serve_load.py --hepml build/src/cli/hepml \
      --repository examples/model_repository --protocol grpc --concurrency 8

With --hepml the server is started on free ports (and stopped after);
otherwise give --url (HTTP, host:port) or --grpc (host:port) of a running one."""
import argparse
import json
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(os.path.dirname(HERE), "src", "serve", "proto")


def stubs(out):
    """Python modules from the project's protos, generated once into `out`."""
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", PROTO_DIR, f"--python_out={out}", f"--grpc_out={out}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                    os.path.join(PROTO_DIR, "model_config.proto"), os.path.join(PROTO_DIR, "grpc_service.proto")],
                   check=True)


def client(args, target, start_at, result_queue):
    x = np.random.default_rng(os.getpid()).standard_normal((args.batch, args.features)).astype(np.float32)
    latencies = []
    if args.protocol == "grpc":
        sys.path.insert(0, args.stubs)
        import grpc
        import grpc_service_pb2 as pb
        import grpc_service_pb2_grpc as pb_grpc
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(target))
        req = pb.ModelInferRequest(model_name=args.model)
        req.inputs.add(name=args.input, datatype="FP32", shape=list(x.shape))
        req.raw_input_contents.append(x.tobytes())

        def send():
            stub.ModelInfer(req)
    else:
        import http.client
        conn = http.client.HTTPConnection(target)
        header = json.dumps({"inputs": [{"name": args.input, "shape": list(x.shape), "datatype": "FP32",
                                         "parameters": {"binary_data_size": x.nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        body = header + x.tobytes()
        headers = {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}

        def send():
            conn.request("POST", f"/v2/models/{args.model}/infer", body, headers)
            r = conn.getresponse()
            r.read()
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}")
    for _ in range(args.warmup):
        send()
    while time.time() < start_at:
        time.sleep(0.001)
    end = start_at + args.duration
    while True:
        t0 = time.perf_counter()
        send()
        t1 = time.perf_counter()
        if time.time() > end:
            break
        latencies.append(t1 - t0)
    result_queue.put(latencies)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml")
    ap.add_argument("--repository", default=os.path.join(os.path.dirname(HERE), "examples", "model_repository"))
    ap.add_argument("--url", help="HTTP host:port of a running server")
    ap.add_argument("--grpc", help="gRPC host:port of a running server")
    ap.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    ap.add_argument("--model", default="trigger_mlp")
    ap.add_argument("--input", default="features")
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    args.stubs = tempfile.mkdtemp(prefix="hepml-serve-load-")
    if args.protocol == "grpc":
        stubs(args.stubs)

    server = None
    if args.hepml:
        server = subprocess.Popen([args.hepml, "serve", "--model-repository", args.repository, "--http-port", "0",
                                   "--grpc-port", "0", "--metrics-port", "0"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        ports = {}
        while len(ports) < 3:
            m = re.match(r"Started (\S+)(?: Service)? at ([\d.]+):(\d+)", server.stdout.readline().strip())
            if m:
                ports[m.group(1)] = f"127.0.0.1:{m.group(3)}"
        args.url, args.grpc = ports["HTTPService"], ports["GRPCInferenceService"]
        time.sleep(0.5)
    target = args.grpc if args.protocol == "grpc" else args.url
    queue = mp.Queue()
    start_at = time.time() + 3 + 0.2 * args.concurrency
    procs = [mp.Process(target=client, args=(args, target, start_at, queue)) for _ in range(args.concurrency)]
    for p in procs:
        p.start()
    lat = []
    for _ in procs:
        lat += queue.get()
    for p in procs:
        p.join()
    if server:
        server.send_signal(signal.SIGTERM)
        server.wait()
    lat = np.array(lat) * 1e6
    rps = len(lat) / args.duration
    print(json.dumps({"protocol": args.protocol, "model": args.model, "batch": args.batch,
                      "concurrency": args.concurrency, "requests_per_s": round(rps, 1),
                      "inferences_per_s": round(rps * args.batch, 1),
                      "latency_us": {"p50": round(float(np.percentile(lat, 50)), 1),
                                     "p90": round(float(np.percentile(lat, 90)), 1),
                                     "p99": round(float(np.percentile(lat, 99)), 1),
                                     "mean": round(float(lat.mean()), 1)}}))


if __name__ == "__main__":
    main()

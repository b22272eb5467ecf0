#!/usr/bin/env python3
"""`hepml serve` over gRPC (inference.GRPCInferenceService, grpc.health.v1)
with grpcio and stubs generated from the project's .proto files: the core
RPCs, typed and raw tensor contents checked against `hepml run`, error
codes, streaming, and dynamic batching under concurrent requests (fewer
executions than inferences)."""
import argparse
import concurrent.futures
import os
import subprocess
import tempfile

import grpc
import numpy as np

from serve_harness import (TRIGGER_INPUT, TRIGGER_MLP, Failures, Server, grpc_stubs, hepml_run, make_repository,
                           temp_dir)

CONFIG = """
name: "trigger_mlp"
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ]
dynamic_batching { max_queue_delay_microseconds: 50000 }
instance_group [ { count: 1 kind: KIND_CPU } ]
"""
# Clients send 4x4 features; the model sees 16 (input reshape), and its 5
# probabilities come back as 5x1 (output reshape).
RESHAPED = """
max_batch_size: 8
input [ { name: "features" data_type: TYPE_FP32 dims: [ 4, 4 ] reshape: { shape: [ 16 ] } } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5, 1 ] reshape: { shape: [ 5 ] } } ]
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-grpc-")
    pb, pb_grpc, mc = grpc_stubs(work)
    repo = make_repository(os.path.join(work, "repo"), {"trigger_mlp": (CONFIG, {1: TRIGGER_MLP}),
                                                        "auto_mlp": (None, {1: TRIGGER_MLP, 2: TRIGGER_MLP}),
                                                        "reshaped_mlp": (RESHAPED, {1: TRIGGER_MLP})})
    x = np.load(TRIGGER_INPUT)
    expected = hepml_run(args.hepml, TRIGGER_MLP, {"features": x}, work)["class_probabilities"]

    server = Server(args.hepml, [repo])
    try:
        f.check(server.wait_ready(), "server ready")
        channel = grpc.insecure_channel(server.grpc_target)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        f.check(stub.ServerLive(pb.ServerLiveRequest()).live, "ServerLive")
        f.check(stub.ServerReady(pb.ServerReadyRequest()).ready, "ServerReady")
        f.check(stub.ModelReady(pb.ModelReadyRequest(name="trigger_mlp")).ready, "ModelReady")
        f.check(not stub.ModelReady(pb.ModelReadyRequest(name="nope")).ready, "ModelReady of an unknown model")
        meta = stub.ServerMetadata(pb.ServerMetadataRequest())
        f.check(meta.name == "hepml" and "model_repository" in meta.extensions, f"ServerMetadata {meta}")

        mm = stub.ModelMetadata(pb.ModelMetadataRequest(name="trigger_mlp"))
        f.check(mm.platform == "onnxruntime_onnx" and list(mm.versions) == ["1"], f"ModelMetadata {mm}")
        f.check(mm.inputs[0].name == "features" and mm.inputs[0].datatype == "FP32"
                and list(mm.inputs[0].shape) == [-1, 16], f"ModelMetadata inputs {mm.inputs}")
        mm = stub.ModelMetadata(pb.ModelMetadataRequest(name="auto_mlp"))
        f.check(list(mm.versions) == ["2"], f"auto_mlp serves its latest version: {mm.versions}")

        cfg = stub.ModelConfig(pb.ModelConfigRequest(name="trigger_mlp")).config
        f.check(cfg.max_batch_size == 64 and cfg.dynamic_batching.max_queue_delay_microseconds == 50000
                and cfg.input[0].data_type == mc.TYPE_FP32, f"ModelConfig {cfg}")
        cfg = stub.ModelConfig(pb.ModelConfigRequest(name="auto_mlp")).config
        f.check(cfg.max_batch_size == 4 and cfg.HasField("dynamic_batching") and cfg.output[0].name == "class_probabilities",
                f"derived config of auto_mlp: {cfg}")

        def request(data, raw=True, model="trigger_mlp", shape=None, datatype="FP32"):
            req = pb.ModelInferRequest(model_name=model, id="r1")
            t = req.inputs.add(name="features", datatype=datatype, shape=list(shape or data.shape))
            if raw:
                req.raw_input_contents.append(data.astype("<f4").tobytes())
            else:
                t.contents.fp32_contents.extend(data.flatten().tolist())
            req.outputs.add(name="class_probabilities")
            return req

        def output(res):
            return np.frombuffer(res.raw_output_contents[0], dtype="<f4").reshape(list(res.outputs[0].shape))

        res = stub.ModelInfer(request(x, raw=True))
        f.check(res.id == "r1" and res.model_version == "1" and res.outputs[0].datatype == "FP32",
                f"ModelInfer response fields {res.id} {res.model_version}")
        f.check(np.allclose(output(res), expected, atol=1e-6), "raw ModelInfer equals hepml run")
        res = stub.ModelInfer(request(x, raw=False))
        f.check(np.allclose(output(res), expected, atol=1e-6), "typed-contents ModelInfer equals hepml run")
        res = stub.ModelInfer(request(x, model="auto_mlp"))
        f.check(np.allclose(output(res), expected, atol=1e-6), "auto_mlp (derived config) equals hepml run")

        mm = stub.ModelMetadata(pb.ModelMetadataRequest(name="reshaped_mlp"))
        f.check(list(mm.inputs[0].shape) == [-1, 4, 4] and list(mm.outputs[0].shape) == [-1, 5, 1],
                f"reshaped metadata {mm}")
        res = stub.ModelInfer(request(x.reshape(4, 4, 4), model="reshaped_mlp"))
        f.check(list(res.outputs[0].shape) == [4, 5, 1] and np.allclose(output(res).reshape(4, 5), expected, atol=1e-6),
                f"reshaped input and output: {list(res.outputs[0].shape)}")

        def code_of(req):
            try:
                stub.ModelInfer(req)
                return grpc.StatusCode.OK, ""
            except grpc.RpcError as e:
                return e.code(), e.details()

        for what, req, want in [
            ("unknown model", request(x, model="nope"), grpc.StatusCode.NOT_FOUND),
            ("wrong shape", request(x[:, :15].copy()), grpc.StatusCode.INVALID_ARGUMENT),
            ("wrong dtype", request(x, datatype="FP64", shape=[2, 16]), grpc.StatusCode.INVALID_ARGUMENT),
            ("raw size not matching the shape", request(x, shape=[5, 16]), grpc.StatusCode.INVALID_ARGUMENT),
            ("typed contents too short", request(x, raw=False, shape=[5, 16]), grpc.StatusCode.INVALID_ARGUMENT),
            ("batch too large", request(np.zeros((65, 16), np.float32)), grpc.StatusCode.INVALID_ARGUMENT),
        ]:
            code, details = code_of(req)
            f.check(code == want and details, f"{what}: want {want}, got {code} {details}")
        f.check(stub.ServerLive(pb.ServerLiveRequest()).live, "alive after bad requests")

        # Streaming: one answer per request (matched by id), errors in
        # error_message; requests of a stream may share a batch.
        reqs = [request(x), request(x, model="nope"), request(x[:2].copy())]
        for i, r in enumerate(reqs):
            r.id = f"s{i}"
        answers = {a.infer_response.id: a for a in stub.ModelStreamInfer(iter(reqs))}
        f.check(sorted(answers) == ["s0", "s1", "s2"], f"stream answers {sorted(answers)}")
        if sorted(answers) == ["s0", "s1", "s2"]:
            f.check(not answers["s0"].error_message
                    and np.allclose(output(answers["s0"].infer_response), expected, atol=1e-6), "stream answer s0")
            f.check("nope" in answers["s1"].error_message, f"stream answer s1 error: {answers['s1'].error_message}")
            f.check(np.allclose(output(answers["s2"].infer_response), expected[:2], atol=1e-6), "stream answer s2")
        many = [request(x[i % 4:i % 4 + 1].copy()) for i in range(64)]
        for i, r in enumerate(many):
            r.id = str(i)
        answers = list(stub.ModelStreamInfer(iter(many)))
        f.check(len(answers) == 64 and all(
            np.allclose(output(a.infer_response), expected[int(a.infer_response.id) % 4:int(a.infer_response.id) % 4 + 1],
                        atol=1e-6) for a in answers), "64 streamed requests each answered with their own rows")

        # Health service.
        try:
            from grpc_health.v1 import health_pb2, health_pb2_grpc  # python3-grpcio may not ship it
            h = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            f.check(h.status == health_pb2.HealthCheckResponse.SERVING, f"health {h}")
        except ImportError:
            health = channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=lambda _: b"",
                                         response_deserializer=lambda b: b)
            # HealthCheckResponse{status: SERVING (1)} is the bytes 08 01.
            f.check(health(None) == b"\x08\x01", "grpc.health.v1 Check says SERVING")

        # Dynamic batching: concurrent single-event requests share executions.
        before = stub.ModelStatistics(pb.ModelStatisticsRequest(name="trigger_mlp")).model_stats[0]
        n_requests = 96

        def one(i):
            return output(stub.ModelInfer(request(x[i % 4:i % 4 + 1].copy())))

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            results = list(pool.map(one, range(n_requests)))
        f.check(all(np.allclose(r, expected[i % 4:i % 4 + 1], atol=1e-6) for i, r in enumerate(results)),
                "every concurrent request got its own rows back")
        after = stub.ModelStatistics(pb.ModelStatisticsRequest(name="trigger_mlp")).model_stats[0]
        inferences = after.inference_count - before.inference_count
        executions = after.execution_count - before.execution_count
        print(f"concurrent: {inferences} inferences in {executions} executions; batch sizes "
              f"{sorted((b.batch_size, b.compute_infer.count) for b in after.batch_stats)}", flush=True)
        f.check(inferences == n_requests, f"inference count grew by {inferences}, want {n_requests}")
        f.check(0 < executions < inferences, f"batching: {executions} executions for {inferences} inferences")
        f.check(any(b.batch_size > 1 for b in after.batch_stats), "some batch larger than one")
        f.check(after.inference_stats.success.count >= n_requests and after.inference_stats.queue.count >= n_requests,
                "success and queue statistics count requests")
        f.check(after.inference_stats.fail.count >= 3, f"failures counted: {after.inference_stats.fail.count}")
        try:
            stub.ModelStatistics(pb.ModelStatisticsRequest(name="nope"))
            f.check(False, "statistics of an unknown model fail")
        except grpc.RpcError as e:
            f.check(e.code() == grpc.StatusCode.NOT_FOUND, f"statistics of an unknown model: {e.code()}")

        index = stub.RepositoryIndex(pb.RepositoryIndexRequest())
        f.check(sorted((m.name, m.version, m.state) for m in index.models)
                == [("auto_mlp", "2", "READY"), ("reshaped_mlp", "1", "READY"), ("trigger_mlp", "1", "READY")],
                f"RepositoryIndex {index}")
        try:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="trigger_mlp"))
            f.check(False, "unload refused outside explicit mode")
        except grpc.RpcError as e:
            f.check(e.code() == grpc.StatusCode.FAILED_PRECONDITION, f"unload outside explicit mode: {e.code()}")
        # The gRPC port is this server's alone: a second server asked for it
        # fails to start (gRPC's default SO_REUSEPORT would let it start and
        # take a share of the connections).
        try:
            second = subprocess.run([args.hepml, "serve", "--model-repository", repo, "--http-port", "-1",
                                     "--metrics-port", "-1", "--grpc-port", str(server.ports["GRPCInferenceService"])],
                                    capture_output=True, text=True, timeout=30)
            f.check(second.returncode != 0 and "cannot listen for gRPC" in second.stderr,
                    f"a second server on the same gRPC port fails: rc {second.returncode}, {second.stderr[-300:]!r}")
        except subprocess.TimeoutExpired:
            f.check(False, "a second server on the same gRPC port fails (it was still running after 30 s)")
        f.check(stub.ServerLive(pb.ServerLiveRequest()).live, "the first server still answers")
        channel.close()
        rc = server.stop()
        f.check(rc == 0, f"exit code after SIGTERM: {rc}")
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    f.finish()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`hepml serve` with Triton's system shared-memory extension, as a
tritonclient user drives it: the client creates POSIX shared-memory objects
(a file under /dev/shm mapped with mmap, as tritonclient.utils.shared_memory
does), registers regions of them over HTTP and over gRPC, infers the trigger
MLP with its input and output in shared memory and compares with an
ordinary request; status lists the regions, unregister drops them; bad
cases are refused with 400 / INVALID_ARGUMENT naming what is wrong; CUDA
shared memory is refused as unsupported."""
import argparse
import json
import mmap
import os
import uuid

import grpc
import numpy as np

from serve_harness import Failures, Server, curl, curl_json, grpc_stubs, temp_dir, SOURCE, TRIGGER_INPUT

REPO = os.path.join(SOURCE, "examples", "model_repository")


class ShmObject:
    """A POSIX shared-memory object of `size` bytes (key "/NAME")."""

    def __init__(self, size):
        self.name = f"hepml-test-{uuid.uuid4().hex[:12]}"
        self.key = "/" + self.name
        self.path = "/dev/shm/" + self.name
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, size)
        self.buf = mmap.mmap(fd, size)
        os.close(fd)

    def write(self, offset, array):
        raw = array.tobytes()
        self.buf[offset:offset + len(raw)] = raw

    def read(self, offset, dtype, shape):
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer(self.buf[offset:offset + n], dtype=dtype).reshape(shape)

    def destroy(self):
        self.buf.close()
        os.unlink(self.path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-shm-")
    pb, pb_grpc, _ = grpc_stubs(work)
    x = np.load(TRIGGER_INPUT).astype("<f4")  # 4 x 16
    in_bytes = x.nbytes                        # 256
    out_bytes = x.shape[0] * 5 * 4             # 80
    # One object holding an input region and an output region at offsets
    # that are not page-aligned (the server maps around them).
    obj = ShmObject(8192)
    in_off, out_off = 100, 5000
    obj.write(in_off, x)
    other = ShmObject(4096)
    server = Server(args.hepml, [REPO])
    try:
        f.check(server.wait_ready(), "server ready")
        base = server.http
        code, meta = curl_json(base + "/v2")
        f.check(code == 200 and meta["extensions"].count("system_shared_memory") == 1
                and "cuda_shared_memory" not in meta["extensions"], f"extensions list system shared memory: {meta}")

        # The reference: an ordinary request.
        code, ref = curl_json(base + "/v2/models/trigger_mlp/infer", "POST",
                              {"inputs": [{"name": "features", "shape": [4, 16], "datatype": "FP32",
                                           "data": x.flatten().tolist()}]})
        f.check(code == 200, f"plain request {code} {ref}")
        expected = np.array(ref["outputs"][0]["data"], dtype=np.float32).reshape(4, 5)

        # --- HTTP: register, status, infer, unregister.
        def register(name, key, offset, size):
            return curl_json(f"{base}/v2/systemsharedmemory/region/{name}/register", "POST",
                             {"key": key, "offset": offset, "byte_size": size})

        code, body = register("in_h", obj.key, in_off, in_bytes)
        f.check(code == 200, f"HTTP register input region: {code} {body}")
        code, body = register("out_h", obj.key, out_off, out_bytes)
        f.check(code == 200, f"HTTP register output region: {code} {body}")
        code, status = curl_json(base + "/v2/systemsharedmemory/status")
        f.check(code == 200 and sorted((s["name"], s["key"], s["offset"], s["byte_size"]) for s in status)
                == [("in_h", obj.key, in_off, in_bytes), ("out_h", obj.key, out_off, out_bytes)],
                f"HTTP status lists both regions: {status}")
        code, status = curl_json(base + "/v2/systemsharedmemory/region/in_h/status")
        f.check(code == 200 and [s["name"] for s in status] == ["in_h"], f"HTTP status of one region: {status}")

        def shm_request(in_region="in_h", in_size=in_bytes, in_offset=0, out_region="out_h", out_size=out_bytes,
                        shape=(4, 16)):
            return {"inputs": [{"name": "features", "shape": list(shape), "datatype": "FP32",
                                "parameters": {"shared_memory_region": in_region, "shared_memory_offset": in_offset,
                                               "shared_memory_byte_size": in_size}}],
                    "outputs": [{"name": "class_probabilities",
                                 "parameters": {"shared_memory_region": out_region, "shared_memory_byte_size": out_size}}]}

        obj.write(out_off, np.zeros((4, 5), np.float32))
        code, res = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", shm_request())
        f.check(code == 200, f"HTTP shared-memory infer: {code} {res}")
        if code == 200:
            o = res["outputs"][0]
            f.check("data" not in o and o["shape"] == [4, 5] and o["datatype"] == "FP32"
                    and o["parameters"]["shared_memory_region"] == "out_h", f"output metadata without data: {o}")
            got = obj.read(out_off, "<f4", (4, 5))
            f.check(np.allclose(got, expected, rtol=1e-6, atol=1e-7),
                    f"HTTP output in shared memory equals the plain answer: {got} vs {expected}")

        # Output region too small: named.
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", shm_request(out_size=40))
        f.check(code == 400 and "class_probabilities" in str(body) and "80" in str(body) and "40" in str(body),
                f"output region too small: {code} {body}")
        # Input byte size not the tensor's: named with the numbers.
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", shm_request(in_size=128))
        f.check(code == 400 and "features" in str(body) and "128" in str(body) and "256" in str(body),
                f"wrong input byte size: {code} {body}")
        # Unknown region.
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", shm_request(in_region="nope"))
        f.check(code == 400 and "nope" in str(body) and "features" in str(body), f"unknown region: {code} {body}")
        # Offset + size past the region.
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST",
                               shm_request(in_offset=64, shape=(4, 16)))
        f.check(code == 400 and "64" in str(body) and "256" in str(body) and "in_h" in str(body),
                f"slice beyond the region: {code} {body}")
        # Region without byte size.
        req = shm_request()
        del req["inputs"][0]["parameters"]["shared_memory_byte_size"]
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", req)
        f.check(code == 400 and "shared_memory_byte_size" in str(body), f"region without byte size: {code} {body}")

        # Register errors: same name twice, missing key, region past the object.
        code, body = register("in_h", obj.key, 0, 16)
        f.check(code == 400 and "in_h" in str(body) and "already" in str(body), f"same name twice: {code} {body}")
        code, body = register("ghost", "/hepml-test-no-such-key", 0, 16)
        f.check(code == 400 and "hepml-test-no-such-key" in str(body), f"missing key: {code} {body}")
        code, body = register("big", obj.key, 8000, 1000)
        f.check(code == 400 and "8192" in str(body), f"region past the object's end: {code} {body}")
        code, body = curl_json(base + "/v2/systemsharedmemory/region/nope/status")
        f.check(code in (400, 404) and "nope" in str(body), f"status of an unknown region: {code} {body}")

        # CUDA shared memory: refused as unsupported.
        code, body = curl_json(base + "/v2/cudasharedmemory/status")
        f.check(code == 400 and "not supported" in str(body), f"CUDA shared memory status: {code} {body}")
        code, body = curl_json(base + "/v2/cudasharedmemory/region/c/register", "POST",
                               {"raw_handle": {"b64": ""}, "device_id": 0, "byte_size": 16})
        f.check(code == 400 and "not supported" in str(body), f"CUDA shared memory register: {code} {body}")

        # Unregister one, then all.
        code, _ = curl_json(base + "/v2/systemsharedmemory/region/out_h/unregister", "POST")
        f.check(code == 200, "HTTP unregister one")
        code, status = curl_json(base + "/v2/systemsharedmemory/status")
        f.check([s["name"] for s in status] == ["in_h"], f"after unregistering out_h: {status}")
        code, body = curl_json(base + "/v2/models/trigger_mlp/infer", "POST", shm_request())
        f.check(code == 400 and "out_h" in str(body), f"infer with an unregistered output region: {code} {body}")
        code, _ = curl_json(base + "/v2/systemsharedmemory/unregister", "POST")
        code, status = curl_json(base + "/v2/systemsharedmemory/status")
        f.check(code == 200 and status == [], f"after unregistering all: {status}")

        # --- gRPC: the same over the other front end (shared names).
        stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
        meta = stub.ServerMetadata(pb.ServerMetadataRequest())
        f.check(list(meta.extensions).count("system_shared_memory") == 1, f"gRPC extensions: {meta.extensions}")
        stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(name="in_g", key=obj.key, offset=in_off,
                                                                             byte_size=in_bytes))
        stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(name="out_g", key=other.key, offset=0,
                                                                             byte_size=4096))
        st = stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest())
        f.check(sorted(st.regions) == ["in_g", "out_g"] and st.regions["in_g"].key == obj.key
                and st.regions["in_g"].offset == in_off and st.regions["in_g"].byte_size == in_bytes,
                f"gRPC status: {st}")
        code, status = curl_json(base + "/v2/systemsharedmemory/status")
        f.check(sorted(s["name"] for s in status) == ["in_g", "out_g"], f"HTTP sees gRPC's regions: {status}")

        def grpc_request(in_region="in_g", in_size=in_bytes, out_region="out_g", out_offset=16, out_size=out_bytes):
            req = pb.ModelInferRequest(model_name="trigger_mlp", id="shm")
            t = req.inputs.add(name="features", datatype="FP32", shape=[4, 16])
            t.parameters["shared_memory_region"].string_param = in_region
            t.parameters["shared_memory_byte_size"].int64_param = in_size
            o = req.outputs.add(name="class_probabilities")
            o.parameters["shared_memory_region"].string_param = out_region
            o.parameters["shared_memory_offset"].int64_param = out_offset
            o.parameters["shared_memory_byte_size"].int64_param = out_size
            return req

        res = stub.ModelInfer(grpc_request())
        f.check(res.outputs[0].name == "class_probabilities" and list(res.outputs[0].shape) == [4, 5]
                and len(res.raw_output_contents) in (0, 1) and all(len(r) == 0 for r in res.raw_output_contents),
                f"gRPC response carries metadata only: {res}")
        got = other.read(16, "<f4", (4, 5))
        f.check(np.allclose(got, expected, rtol=1e-6, atol=1e-7), f"gRPC output in shared memory: {got}")

        # raw_input_contents with an (empty) entry for the input in shared
        # memory, keeping one entry per input: the entry is skipped.
        other.write(16, np.zeros((4, 5), np.float32))
        req = grpc_request()
        req.raw_input_contents.append(b"")
        stub.ModelInfer(req)
        f.check(np.allclose(other.read(16, "<f4", (4, 5)), expected, rtol=1e-6, atol=1e-7),
                "gRPC shared-memory input beside an empty raw_input_contents entry")

        # Streaming uses the same path.
        other.write(16, np.zeros((4, 5), np.float32))
        answers = list(stub.ModelStreamInfer(iter([grpc_request()])))
        f.check(len(answers) == 1 and answers[0].error_message == ""
                and np.allclose(other.read(16, "<f4", (4, 5)), expected, rtol=1e-6, atol=1e-7),
                f"gRPC stream with shared memory: {[a.error_message for a in answers]}")

        def code_of(call):
            try:
                call()
                return None, ""
            except grpc.RpcError as e:
                return e.code(), e.details()

        for what, req, words in [
                ("unknown region", grpc_request(in_region="nope"), ["nope", "features"]),
                ("wrong byte size", grpc_request(in_size=100), ["features", "100", "256"]),
                ("output too small", grpc_request(out_size=8), ["class_probabilities", "80", "8"]),
                ("output slice past the region", grpc_request(out_offset=4090), ["out_g", "4090", "4096"])]:
            c, d = code_of(lambda: stub.ModelInfer(req))
            f.check(c == grpc.StatusCode.INVALID_ARGUMENT and all(w in d for w in words), f"gRPC {what}: {c} {d}")
        c, d = code_of(lambda: stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
            name="in_g", key=obj.key, offset=0, byte_size=16)))
        f.check(c == grpc.StatusCode.ALREADY_EXISTS and "in_g" in d, f"gRPC same name twice: {c} {d}")
        c, d = code_of(lambda: stub.SystemSharedMemoryRegister(pb.SystemSharedMemoryRegisterRequest(
            name="ghost", key="/hepml-test-no-such-key", offset=0, byte_size=16)))
        f.check(c == grpc.StatusCode.INVALID_ARGUMENT and "hepml-test-no-such-key" in d, f"gRPC missing key: {c} {d}")
        c, d = code_of(lambda: stub.CudaSharedMemoryRegister(pb.CudaSharedMemoryRegisterRequest(name="c", byte_size=16)))
        f.check(c == grpc.StatusCode.UNIMPLEMENTED and "not supported" in d, f"gRPC CUDA shared memory: {c} {d}")

        # A region unregistered while requests use it: they finish (the
        # mapping lives until they end); later ones are refused.
        import concurrent.futures
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(lambda: code_of(lambda: stub.ModelInfer(grpc_request()))) for _ in range(64)]
            stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest(name="out_g"))
            results = [fu.result() for fu in futures]
        f.check(all(c is None or (c == grpc.StatusCode.INVALID_ARGUMENT and "out_g" in d) for c, d in results),
                f"requests racing an unregister end cleanly: {set(results)}")
        f.check(server.alive(), "server alive after the race")
        stub.SystemSharedMemoryUnregister(pb.SystemSharedMemoryUnregisterRequest())
        st = stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest())
        f.check(len(st.regions) == 0, f"gRPC unregister all: {st}")
        c, d = code_of(lambda: stub.SystemSharedMemoryStatus(pb.SystemSharedMemoryStatusRequest(name="in_g")))
        f.check(c == grpc.StatusCode.NOT_FOUND and "in_g" in d, f"gRPC status of an unregistered region: {c} {d}")
        f.check(server.stop() == 0, "clean shutdown")
    finally:
        if server.proc.poll() is None:
            server.stop()
        obj.destroy()
        other.destroy()
    f.finish()


if __name__ == "__main__":
    main()

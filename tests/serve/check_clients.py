#!/usr/bin/env python3
"""`hepml serve` against slow and misbehaving clients, while a well-behaved
client keeps asking (HTTP keep-alive and gRPC) and must keep getting correct
answers (each within a generous bound): HTTP clients that stall mid-body,
trickle one byte per 100 ms, disconnect mid-request or before reading the
answer, and many idle connections; gRPC clients that cancel calls in flight
and abandon a stream mid-way. The server must not crash, must answer a
stalled request 408 and close it after --http-request-timeout-ms, close
idle connections after --http-idle-timeout-ms, and give back the
connections (its socket count returns to where it started)."""
import argparse
import http.client
import json
import os
import socket
import threading
import time

import grpc
import numpy as np

from serve_harness import SOURCE, TRIGGER_INPUT, Failures, Server, grpc_stubs, temp_dir

REPO = os.path.join(SOURCE, "examples", "model_repository")
REQUEST_TIMEOUT_MS = 8000
IDLE_TIMEOUT_MS = 6000
# No answer may take longer than this (a failure bound, not a measurement).
ANSWER_BOUND_S = 15


def sockets_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def wait_for(cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    return s


def read_all(s, timeout):
    """Everything the server sends until it closes (or `timeout`)."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True


class GoodClient(threading.Thread):
    """Asks over HTTP (one keep-alive connection) and gRPC, alternately,
    checking every answer, until stopped."""

    def __init__(self, server, pb, pb_grpc, x, expected):
        super().__init__(daemon=True)
        self.server, self.pb, self.x, self.expected = server, pb, x, expected
        self.stub = pb_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(server.grpc_target))
        self.stop = threading.Event()
        self.ok = 0
        self.errors = []
        self.slowest = 0.0

    def http_once(self, conn):
        body = json.dumps({"inputs": [{"name": "features", "shape": [4, 16], "datatype": "FP32",
                                       "data": self.x.flatten().tolist()}]})
        conn.request("POST", "/v2/models/trigger_mlp/infer", body, {"Content-Type": "application/json"})
        res = conn.getresponse()
        data = res.read()
        if res.status != 200:
            raise RuntimeError(f"HTTP {res.status} {data[:200]!r}")
        return np.array(json.loads(data)["outputs"][0]["data"], np.float32).reshape(4, 5)

    def grpc_once(self):
        req = self.pb.ModelInferRequest(model_name="trigger_mlp")
        req.inputs.add(name="features", datatype="FP32", shape=[4, 16])
        req.raw_input_contents.append(self.x.tobytes())
        res = self.stub.ModelInfer(req, timeout=ANSWER_BOUND_S)
        return np.frombuffer(res.raw_output_contents[0], "<f4").reshape(4, 5)

    def run(self):
        port = self.server.ports["HTTPService"]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_BOUND_S)
        i = 0
        while not self.stop.is_set():
            t0 = time.time()
            try:
                got = self.http_once(conn) if i % 2 == 0 else self.grpc_once()
                if not np.allclose(got, self.expected, rtol=1e-6, atol=1e-7):
                    self.errors.append(f"wrong answer {got}")
                else:
                    self.ok += 1
            except (OSError, http.client.HTTPException) as e:
                # A keep-alive connection the server closed for idleness is
                # reopened (as any HTTP client does); anything else counts.
                if isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=ANSWER_BOUND_S)
                else:
                    self.errors.append(f"{type(e).__name__}: {e}")
            except (grpc.RpcError, RuntimeError) as e:
                self.errors.append(str(e)[:300])
            self.slowest = max(self.slowest, time.time() - t0)
            i += 1
            time.sleep(0.02)
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-clients-")
    pb, pb_grpc, _ = grpc_stubs(work)
    x = np.load(TRIGGER_INPUT).astype("<f4")
    server = Server(args.hepml, [REPO], ["--http-request-timeout-ms", str(REQUEST_TIMEOUT_MS),
                                         "--http-idle-timeout-ms", str(IDLE_TIMEOUT_MS)])
    port = server.ports["HTTPService"]
    try:
        f.check(server.wait_ready(), "server ready")
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("POST", "/v2/models/trigger_mlp/infer",
                     json.dumps({"inputs": [{"name": "features", "shape": [4, 16], "datatype": "FP32",
                                             "data": x.flatten().tolist()}]}))
        expected = np.array(json.loads(conn.getresponse().read())["outputs"][0]["data"], np.float32).reshape(4, 5)
        conn.close()
        time.sleep(0.5)
        baseline = sockets_of(server.proc.pid)

        good = GoodClient(server, pb, pb_grpc, x, expected)
        good.start()

        # 1. Headers, then a stall mid-body: answered 408 and closed after
        #    the request timeout.
        stalled = connect(port)
        t0 = time.time()
        stalled.sendall(b"POST /v2/models/trigger_mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                        b"Content-Type: application/json\r\n\r\n{\"inputs\": [")
        # 2. Many idle connections (no byte sent).
        idle = [connect(port) for _ in range(200)]
        # 3. Disconnects mid-request and before reading the answer.
        for _ in range(20):
            s = connect(port)
            s.sendall(b"POST /v2/models/trigger_mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"in")
            s.close()
            s = connect(port)
            body = json.dumps({"inputs": [{"name": "features", "shape": [4, 16], "datatype": "FP32",
                                           "data": x.flatten().tolist()}]}).encode()
            s.sendall(b"POST /v2/models/trigger_mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            s.close()
        # 4. One byte per 100 ms: a short request, whole within the timeout,
        #    is answered.
        trickle = connect(port)
        for b in b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n":
            trickle.sendall(bytes([b]))
            time.sleep(0.1)
        data, closed = read_all(trickle, ANSWER_BOUND_S)
        f.check(data.startswith(b"HTTP/1.1 200"), f"a request trickled one byte per 100 ms is answered: {data[:80]!r}")
        trickle.close()

        data, closed = read_all(stalled, REQUEST_TIMEOUT_MS / 1000 + ANSWER_BOUND_S)
        waited = time.time() - t0
        f.check(closed and data.startswith(b"HTTP/1.1 408") and b"not received within" in data,
                f"a request stalled mid-body is answered 408 and closed: {data[:200]!r} closed={closed}")
        f.check(waited >= REQUEST_TIMEOUT_MS / 1000 * 0.9, f"not before the request timeout: {waited:.1f} s")
        stalled.close()

        # The idle connections are closed by the server after the idle timeout.
        closed_idle = 0
        for s in idle:
            data, closed = read_all(s, IDLE_TIMEOUT_MS / 1000 + ANSWER_BOUND_S)
            closed_idle += closed and data == b""
            s.close()
        f.check(closed_idle == len(idle), f"idle connections closed by the server: {closed_idle} of {len(idle)}")

        # 5. gRPC: calls cancelled in flight, and a stream abandoned mid-way.
        channel = grpc.insecure_channel(server.grpc_target)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        def request():
            req = pb.ModelInferRequest(model_name="trigger_mlp")
            req.inputs.add(name="features", datatype="FP32", shape=[4, 16])
            req.raw_input_contents.append(x.tobytes())
            return req

        futures = [stub.ModelInfer.future(request()) for _ in range(200)]
        for fu in futures:
            fu.cancel()
        settled = 0
        for fu in futures:
            try:
                fu.result(timeout=ANSWER_BOUND_S)
                settled += 1
            except grpc.FutureCancelledError:
                settled += 1
            except grpc.RpcError as e:
                settled += e.code() == grpc.StatusCode.CANCELLED
        f.check(settled == len(futures), f"cancelled calls settle: {settled} of {len(futures)}")

        sent = threading.Event()
        release = threading.Event()

        def stream_requests():
            for _ in range(3):
                yield request()
            sent.set()
            release.wait(60)  # never half-closes: the call is abandoned

        call = stub.ModelStreamInfer(stream_requests())
        first = next(call)
        f.check(first.error_message == "" and len(first.infer_response.raw_output_contents) == 1,
                f"stream answers before it is abandoned: {first.error_message}")
        sent.wait(10)
        call.cancel()
        release.set()
        # Another stream opened and dropped by closing its channel.
        other = grpc.insecure_channel(server.grpc_target)
        ostub = pb_grpc.GRPCInferenceServiceStub(other)
        release2 = threading.Event()

        def forever():
            yield request()
            release2.wait(60)

        ocall = ostub.ModelStreamInfer(forever())
        next(ocall)
        other.close()
        release2.set()

        time.sleep(2)
        good.stop.set()
        good.join(ANSWER_BOUND_S * 2)
        f.check(not good.errors, f"the well-behaved client got only correct answers: {good.errors[:5]}")
        f.check(good.ok > 20, f"the well-behaved client kept getting answers: {good.ok}")
        f.check(good.slowest < ANSWER_BOUND_S, f"each within {ANSWER_BOUND_S} s (slowest {good.slowest:.2f} s)")
        print(f"well-behaved client: {good.ok} answers, slowest {good.slowest * 1000:.0f} ms", flush=True)
        f.check(server.alive(), "server alive")
        channel.close()
        # Every misbehaving connection is given back.
        f.check(wait_for(lambda: sockets_of(server.proc.pid) <= baseline + 2, 30),
                f"sockets back to the baseline {baseline}: {sockets_of(server.proc.pid)}")
        f.check(server.stop() == 0, "clean shutdown")
    finally:
        if server.proc.poll() is None:
            server.stop()
    f.finish()


if __name__ == "__main__":
    main()

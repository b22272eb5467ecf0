#!/usr/bin/env python3
"""Fresh gRPC connections whose first attempt fails: `hepml perf -i grpc`
through a loopback TCP proxy in front of a real `hepml serve` that drops the
first connection attempts of the perf clients (accepted, then reset at
once, as a connection attempt that fails on the client's side looks to
gRPC), and forwards every other connection both ways. Each client whose
first attempt was dropped must connect again and have every request
answered: a failed attempt that the retry mends costs time, never a failed
request (the soak's failures were of this kind). The proxy's counts show
the attempts were dropped and made again. No timing is asserted."""
import argparse
import json
import os
import socket
import struct
import subprocess
import threading

from serve_harness import TRIGGER_MLP, Failures, Server, make_repository, temp_dir

CONFIG = """
name: "trigger_mlp"
backend: "onnxruntime"
max_batch_size: 64
input [ { name: "features" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "class_probabilities" data_type: TYPE_FP32 dims: [ 5 ] } ]
dynamic_batching { max_queue_delay_microseconds: 100 }
instance_group [ { count: 1 kind: KIND_CPU } ]
"""


class DroppingProxy:
    """A TCP proxy on a free loopback port to `target` (host, port): the
    connections whose arrival number (from 1) is in `drop` are reset as soon
    as they are accepted; the others are forwarded both ways."""

    def __init__(self, target, drop):
        self.target = target
        self.drop = set(drop)
        self.accepted = 0
        self.dropped = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted in self.drop:
                self.dropped += 1
                # SO_LINGER 0: close sends a reset.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-reconnect-")
    repo = make_repository(os.path.join(work, "repo"), {"trigger_mlp": (CONFIG, {1: TRIGGER_MLP})})
    server = Server(args.hepml, [repo])
    try:
        f.check(server.wait_ready(), "server ready")
        host, port = server.grpc_target.rsplit(":", 1)
        # Connection 1 is perf's first client (liveness, metadata, statistics);
        # 2-5 are the first attempts of four of its eight load clients.
        concurrency = 8
        proxy = DroppingProxy((host, int(port)), drop=range(2, 6))
        try:
            out = subprocess.run([args.hepml, "perf", "-m", "trigger_mlp", "-u", proxy.address, "-i", "grpc",
                                  "--concurrency-range", f"{concurrency}:{concurrency}", "-p", "500", "--json"],
                                 capture_output=True, text=True, timeout=120)
        finally:
            proxy.close()
        f.check(out.returncode == 0, f"perf through the proxy: exit code {out.returncode}: {out.stderr.strip()}")
        try:
            level = json.loads(out.stdout)["levels"][0]
        except (ValueError, KeyError, IndexError):
            level = {}
            f.check(False, f"perf printed its JSON report: {out.stdout[:300]!r}")
        f.check(level.get("errors") == 0, f"no failed request: {level.get('errors')} errors; {out.stderr.strip()}")
        f.check(level.get("requests", 0) > 0, f"requests answered: {level.get('requests')}")
        f.check(proxy.dropped == 4, f"the proxy dropped 4 connection attempts: {proxy.dropped}")
        # The first client and the eight load clients, four of them twice.
        f.check(proxy.accepted >= 1 + concurrency + 4,
                f"the dropped clients connected again: {proxy.accepted} connections in all")
        f.check(server.alive(), "server alive after the run")
    finally:
        rc = server.stop()
        f.check(rc == 0, f"server exit code {rc}")
    f.finish()


if __name__ == "__main__":
    main()

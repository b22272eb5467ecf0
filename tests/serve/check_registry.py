#!/usr/bin/env python3
"""`hepml serve --registry`: models served by registry reference (latest,
MODEL@ALIAS, MODEL@tag:TAG:RUN, NAME=REF), alias moves followed while a
client keeps sending requests (none may fail), a version that cannot be
served leaves the old one in service, the registry's REST API on the HTTP
port, and references that do not resolve stop the server with the reason."""
import argparse
import os
import subprocess
import threading
import time


from serve_harness import Failures, Server, curl_json, scale_model, temp_dir


def infer(server, name):
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1.0, 2.0, 3.0, 4.0]}]}
    code, out = curl_json(f"{server.http}/v2/models/{name}/infer", "POST", body)
    if code != 200:
        return code, None, out
    return code, out["model_version"], out["outputs"][0]["data"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    f = Failures()
    work = temp_dir("hepml-serve-registry-")
    reg = os.path.join(work, "registry")

    def registry(*a):
        out = subprocess.run([args.hepml, "registry", "--registry", reg, *a], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"hepml registry {' '.join(a)}: {out.stderr}")
        return out.stdout

    registry("init")
    registry("model", "create", "scale")
    for factor in (1, 2, 3):
        registry("push", "scale", scale_model(os.path.join(work, f"scale{factor}.onnx"), factor))
    registry("alias", "set", "scale", "production", "1")
    registry("iov", "add", "calib", "scale@2", "--runs", "1000-1999")

    cache = os.path.join(work, "cache")
    server = Server(args.hepml, [], ["--registry", reg, "--registry-cache", cache, "--registry-poll-secs", "1",
                                     "--registry-model", "prod=scale@production",
                                     "--registry-model", "run1500=scale@tag:calib:1500",
                                     "--registry-model", "scale"])
    try:
        f.check(server.wait_ready(), "server ready with registry models")
        code, version, first = infer(server, "prod")
        f.check((code, version, first) == (200, "1", 1.0), f"prod = scale@production = version 1: {code} {version} {first}")
        code, version, first = infer(server, "run1500")
        f.check((code, version, first) == (200, "2", 2.0), f"run1500 = calib at run 1500 = version 2: {version} {first}")
        code, version, first = infer(server, "scale")
        f.check((code, version, first) == (200, "3", 3.0), f"scale = latest = version 3: {version} {first}")
        f.check(os.path.isfile(os.path.join(cache, "prod", "1", "scale1.onnx")), "version pulled into the cache")

        # The registry's REST API answers on the same HTTP port.
        code, models = curl_json(f"{server.http}/api/v1/models")
        f.check(code == 200 and "scale" in str(models), f"/api/v1/models on the serve port: {code} {models}")

        # A client sends requests without pause while the alias moves 1 -> 3.
        results, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                results.append(infer(server, "prod"))

        t = threading.Thread(target=client)
        t.start()
        time.sleep(0.5)
        registry("alias", "set", "scale", "production", "3")
        deadline = time.time() + 30
        while time.time() < deadline and not any(r[1] == "3" for r in results[-5:]):
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        t.join()
        failed = [r for r in results if r[0] != 200]
        f.check(not failed, f"no request failed during the alias move ({len(failed)} of {len(results)}: {failed[:3]})")
        versions = [r[1] for r in results if r[0] == 200]
        f.check(versions and versions[-1] == "3" and versions[0] == "1",
                f"answers moved from version 1 to 3: first {versions[:1]} last {versions[-1:]}")
        f.check(all((v, x) in (("1", 1.0), ("3", 3.0)) for _, v, x in results if v),
                "every answer is the value of the version that gave it")
        bumps = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
        f.check(len(bumps) == 1, f"one switch, never back: {len(bumps)}")
        deadline = time.time() + 15  # the replaced version drains for the retire grace first
        while time.time() < deadline and "version 1 -> 3" not in server.read_log():
            time.sleep(0.2)
        f.check(not os.path.exists(os.path.join(cache, "prod", "1")), "the replaced version's files are removed")
        f.check("version 1 -> 3" in server.read_log(), "the move is logged")

        # A new version that cannot be served (a model with no .onnx file)
        # leaves version 3 in service.
        weights = os.path.join(work, "notes.txt")
        with open(weights, "w") as fh:
            fh.write("not a model\n")
        pushed = subprocess.run([args.hepml, "registry", "--registry", reg, "push", "scale", weights],
                                capture_output=True, text=True)
        if pushed.returncode == 0:
            registry("alias", "set", "scale", "production", "4")
            time.sleep(3)
            code, version, first = infer(server, "prod")
            f.check((code, version) == (200, "3"), f"a version without a model keeps 3 in service: {code} {version}")
            f.check("cannot be served" in server.read_log(), "the refused move is logged with its reason")
        f.check(server.alive(), "server alive")
    finally:
        f.check(server.stop() == 0, "server exits 0 on SIGTERM")

    # References that do not resolve, and bad command lines.
    def refused(extra, code, text):
        out = subprocess.run([args.hepml, "serve", "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
                              *extra], capture_output=True, text=True, timeout=60)
        f.check(out.returncode == code and text in out.stderr,
                f"{extra}: exit {out.returncode} (want {code}), stderr {out.stderr.strip()!r} (want {text!r})")

    refused(["--registry", reg, "--registry-model", "nosuch@production"], 1, "nosuch@production")
    refused(["--registry", reg, "--registry-model", "scale@staging"], 1, "staging")
    refused(["--registry", reg, "--registry-model", "scale@tag:calib:5"], 1, "scale@tag:calib:5")
    refused(["--registry-model", "scale"], 2, "needs --registry")
    refused(["--registry", os.path.join(work, "missing"), "--registry-model", "scale"], 1, "missing")
    refused(["--registry", reg, "--registry-model", "a=scale@1", "--registry-model", "a=scale@2"], 1, "both served as 'a'")
    refused([], 2, "nothing to serve")
    f.finish()


if __name__ == "__main__":
    main()

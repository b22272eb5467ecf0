#!/usr/bin/env python3
"""The Kubernetes manifests of deploy/kubernetes/ against the real `hepml`:
every YAML file parses (python3-yaml) into objects with apiVersion, kind and
a name; each container that runs hepml uses only options `hepml serve
--help` lists, and starting `hepml serve` with those very arguments (ports
made 0, the repository a test copy, the host loopback) gives a server whose
readiness and liveness probe paths answer 200; container ports agree with
the port options, probes and the Service name existing ports, the Service
selects the Deployment's pods, the model repository volume is mounted where
--model-repository points, and the KServe objects fit together (onnx
format, v2 protocol, the InferenceService names the runtime). The
Dockerfile installs only packages scripts/install-deps.sh knows."""
import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(SOURCE, "deploy", "kubernetes")
TRIGGER_MLP = os.path.join(SOURCE, "examples", "models", "trigger_mlp.onnx")
TRIGGER_CONFIG = os.path.join(SOURCE, "examples", "model_repository", "trigger_mlp", "config.pbtxt")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def parse_args(args):
    """[--name=value | --name value | --flag] -> {name: value}; positional words under ''."""
    out = {"": []}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--"):
            if "=" in a:
                k, v = a.split("=", 1)
            elif i + 1 < len(args) and not args[i + 1].startswith("--"):
                k, v = a, args[i + 1]
                i += 1
            else:
                k, v = a, None
            out[k] = v
        else:
            out[""].append(a)
        i += 1
    return out


def serve_options(hepml):
    """The long options of `hepml serve --help`."""
    out = subprocess.run([hepml, "serve", "--help"], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, f"hepml serve --help exits 0: {out.returncode} {out.stderr}")
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", out.stdout))


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def start_as_manifest(hepml, where, args, repo):
    """Runs hepml with the container's arguments, ports made 0, the model
    repository `repo` and the host 127.0.0.1; returns (process, {service: port})."""
    cmd = [hepml]
    for a in args:
        m = re.match(r"(--[a-z-]+)=(.*)", a)
        if m and m.group(1) in ("--http-port", "--grpc-port", "--metrics-port"):
            a = f"{m.group(1)}=0"
        elif m and m.group(1) == "--model-repository":
            a = f"--model-repository={repo}"
        elif m and m.group(1) == "--host":
            a = "--host=127.0.0.1"
        cmd.append(a)
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    ports = {}
    deadline = time.time() + 120
    while len(ports) < 3 and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.match(r"Started (\S+)(?: Service)? at [\d.]+:(\d+)", line.strip())
        if m:
            ports[m.group(1)] = int(m.group(2))
    if not check(len(ports) == 3, f"{where}: hepml starts with the manifest's arguments {cmd}"):
        log.seek(0)
        print(log.read()[-2000:])
    return proc, ports


def check_container(hepml, where, container, options, repo):
    """Checks one hepml container; returns its parsed arguments."""
    check(container.get("command") == ["hepml"], f"{where}: command is hepml: {container.get('command')}")
    args = container.get("args", [])
    parsed = parse_args(args)
    check(parsed[""] == ["serve"], f"{where}: the subcommand is serve: {parsed['']}")
    for flag in parsed:
        if flag:
            check(flag in options, f"{where}: {flag} is an option of `hepml serve` ({sorted(options)})")
    check(all(re.match(r"--[a-z-]+=", a) for a in args[1:]),
          f"{where}: options written --name=value (one list item each): {args}")
    proc, ports = start_as_manifest(hepml, where, args, repo)
    try:
        if len(ports) == 3:
            base = f"http://127.0.0.1:{ports['HTTPService']}"
            deadline = time.time() + 60
            while time.time() < deadline and http_status(base + "/v2/health/ready") != 200:
                time.sleep(0.1)
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if probe in container:
                    path = container[probe]["httpGet"]["path"]
                    code = http_status(base + path)
                    check(code == 200, f"{where}: {probe} {path} answers 200 (got {code})")
            code = http_status(f"http://127.0.0.1:{ports['Metrics']}/metrics")
            check(code == 200, f"{where}: metrics answer 200 (got {code})")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = None
        check(rc == 0, f"{where}: exit code after SIGTERM {rc}")
    return parsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()

    docs = {}
    files = sorted(glob.glob(os.path.join(DEPLOY, "*.yaml")))
    check(len(files) >= 3, f"manifests found: {files}")
    for path in files:
        try:
            with open(path) as fh:
                items = [d for d in yaml.safe_load_all(fh) if d is not None]
        except yaml.YAMLError as e:
            check(False, f"{path} parses: {e}")
            continue
        for d in items:
            name = os.path.basename(path)
            ok = check(isinstance(d, dict) and d.get("apiVersion") and d.get("kind")
                       and isinstance(d.get("metadata"), dict) and d["metadata"].get("name"),
                       f"{name}: apiVersion, kind and metadata.name in every object")
            if ok:
                docs[(d["kind"], d["metadata"]["name"])] = d
    options = serve_options(args.hepml)
    check("--model-repository" in options and "--http-port" in options, f"serve options read: {sorted(options)}")

    with tempfile.TemporaryDirectory(prefix="hepml-deploy-") as repo:
        os.makedirs(os.path.join(repo, "trigger_mlp", "1"))
        with open(TRIGGER_CONFIG) as src, open(os.path.join(repo, "trigger_mlp", "config.pbtxt"), "w") as dst:
            dst.write(src.read())
        with open(TRIGGER_MLP, "rb") as src, open(os.path.join(repo, "trigger_mlp", "1", "model.onnx"), "wb") as dst:
            dst.write(src.read())

        # Deployment + Service.
        dep = docs.get(("Deployment", "hepml-serve"))
        svc = docs.get(("Service", "hepml-serve"))
        pvc = docs.get(("PersistentVolumeClaim", "hepml-model-repository"))
        if check(dep is not None and svc is not None and pvc is not None,
                 f"Deployment, Service and PersistentVolumeClaim present: {sorted(docs)}"):
            pod = dep["spec"]["template"]
            container = pod["spec"]["containers"][0]
            parsed = check_container(args.hepml, "Deployment", container, options, repo)
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for name, flag, number in (("http", "--http-port", 8000), ("grpc", "--grpc-port", 8001),
                                       ("metrics", "--metrics-port", 8002)):
                check(ports.get(name) == number and parsed.get(flag) == str(number),
                      f"Deployment: port {name} is {number} in containerPort and {flag}: {ports} {parsed}")
            check(parsed.get("--host") == "0.0.0.0", f"Deployment: listens on every address: {parsed.get('--host')}")
            for probe, path in (("readinessProbe", "/v2/health/ready"), ("livenessProbe", "/v2/health/live")):
                p = container.get(probe, {}).get("httpGet", {})
                check(p.get("path") == path and p.get("port") in ports,
                      f"Deployment: {probe} on {path} at a named container port: {p}")
            check(dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(),
                  "Deployment: the selector matches the pod labels")
            check(svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items(),
                  "Service: selects the Deployment's pods")
            svc_ports = {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}
            check(svc_ports == {"http": (8000, "http"), "grpc": (8001, "grpc"), "metrics": (8002, "metrics")},
                  f"Service: ports 8000/8001/8002 to the named container ports: {svc_ports}")
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
            repo_mounts = [n for n, p in mounts.items() if p == parsed.get("--model-repository")]
            check(len(repo_mounts) == 1 and repo_mounts[0] in volumes,
                  f"Deployment: a volume is mounted at --model-repository {parsed.get('--model-repository')}: {mounts}")
            if repo_mounts and repo_mounts[0] in volumes:
                claim = volumes[repo_mounts[0]].get("persistentVolumeClaim", {}).get("claimName")
                check(claim == pvc["metadata"]["name"], f"Deployment: the volume is the claim {claim}")

        # KServe ServingRuntime + InferenceService.
        rt = docs.get(("ServingRuntime", "kserve-hepml"))
        isvc = docs.get(("InferenceService", "trigger-mlp"))
        if check(rt is not None and isvc is not None, f"ServingRuntime and InferenceService present: {sorted(docs)}"):
            check(rt["apiVersion"] == "serving.kserve.io/v1alpha1", f"ServingRuntime apiVersion: {rt['apiVersion']}")
            formats = {f["name"]: f for f in rt["spec"]["supportedModelFormats"]}
            check("onnx" in formats and formats["onnx"].get("autoSelect") is True,
                  f"ServingRuntime: onnx format, auto-selected: {formats}")
            check({"v2", "grpc-v2"} <= set(rt["spec"]["protocolVersions"]),
                  f"ServingRuntime: v2 protocol: {rt['spec']['protocolVersions']}")
            container = rt["spec"]["containers"][0]
            check(container["name"] == "kserve-container", "ServingRuntime: KServe's container name")
            parsed = check_container(args.hepml, "ServingRuntime", container, options, repo)
            check(parsed.get("--model-repository") == "/mnt/models",
                  "ServingRuntime: reads the storage initializer's /mnt/models")
            check(parsed.get("--http-port") == "8080" and parsed.get("--grpc-port") == "9000",
                  f"ServingRuntime: KServe's ports 8080 (HTTP) and 9000 (gRPC): {parsed}")
            check([p["containerPort"] for p in container.get("ports", [])] == [8080],
                  "ServingRuntime: container port 8080")
            model = isvc["spec"]["predictor"]["model"]
            check(model.get("runtime") == rt["metadata"]["name"] and model.get("modelFormat", {}).get("name") == "onnx"
                  and model.get("protocolVersion") == "v2",
                  f"InferenceService: runs onnx with kserve-hepml over v2: {model}")

    # The Dockerfile's packages are ones scripts/install-deps.sh installs.
    with open(os.path.join(SOURCE, "scripts", "install-deps.sh")) as fh:
        known = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", fh.read()))
    with open(os.path.join(DEPLOY, "Dockerfile")) as fh:
        docker = fh.read()
    install = re.search(r"apt-get install[^\\]*\\\n(.*?)&&", docker, re.S)
    if check(install is not None, "Dockerfile: one apt-get install"):
        packages = [p for p in install.group(1).replace("\\", " ").split()]
        check(packages and all(p in known for p in packages),
              f"Dockerfile packages known to install-deps.sh: {[p for p in packages if p not in known]}")
    cmd = re.search(r'^CMD (\[.*\])$', docker, re.M)
    if check(cmd is not None, "Dockerfile: a CMD"):
        flags = {a.split("=")[0] for a in yaml.safe_load(cmd.group(1)) if a.startswith("--")}
        check(flags <= options, f"Dockerfile: CMD options of `hepml serve`: {flags - options}")

    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        sys.exit(1)
    print("all checks passed", flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""hepml as an installed library: the install tree, a consumer project built
against it (find_package and pkg-config, shared and static), and the Debian
package unpacked into a scratch root.

  check_install.py build --source S --work W --build-type T [--build B]
      configure S in B (default W/build; core only: no services, no tests, no
      Python module), build, install into W/prefix, cpack -G DEB into W/deb
  check_install.py consume --source S --work W --hepml HEPML
      the install tree's layout; tests/install/consumer built with
      find_package (hepml::runtime and hepml::runtime_static) and with
      pkg-config (hepml, hepml-static); each run on the example model and
      compared with `hepml run` (HEPML: the command of the main build)
  check_install.py deb --source S --work W --hepml HEPML
      the package's metadata; dpkg -x into W/deb-root; the consumer built
      against that root with find_package and pkg-config, and run
  check_install.py services --source S --work W --hepml HEPML --main-build B
      the main build B (with the services) installed into W/services-prefix:
      hepml::remote (libhepml_remote.so, remote_session.h) used by
      tests/install/remote_consumer against the installed `hepml serve` and
      on its local fallback, and the installed Python module
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

MODEL = "examples/models/trigger_mlp.onnx"
BATCH = 4


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if res.returncode != 0:
        print(res.stdout)
        sys.exit(f"FAIL: exit {res.returncode}: {' '.join(cmd)}")
    return res.stdout


def fail(msg):
    sys.exit(f"FAIL: {msg}")


def cmd_build(a):
    build = a.build or os.path.join(a.work, "build")
    prefix = os.path.join(a.work, "prefix")
    shutil.rmtree(prefix, ignore_errors=True)
    run(["cmake", "-S", a.source, "-B", build, "-G", "Ninja", f"-DCMAKE_BUILD_TYPE={a.build_type}",
         "-DHEPML_SERVICES=OFF", "-DHEPML_BUILD_TESTS=OFF", "-DHEPML_PYTHON=OFF", f"-DCMAKE_INSTALL_PREFIX={prefix}"])
    run(["cmake", "--build", build, "-j", "2"])
    run(["cmake", "--install", build])
    deb = os.path.join(a.work, "deb")
    shutil.rmtree(deb, ignore_errors=True)
    run(["cpack", "-G", "DEB", "-B", deb, "--config", os.path.join(build, "CPackConfig.cmake")], cwd=build)
    debs = glob.glob(os.path.join(deb, "*.deb"))
    if len(debs) != 1:
        fail(f"expected one .deb in {deb}, found {debs}")
    print("built", debs[0])


def reference(a, tmp):
    """`hepml run` of the main build on the consumer's input."""
    info = run([a.hepml, "info", os.path.join(a.source, MODEL)])
    line = [l for l in info.splitlines() if l.strip().startswith("features:")]
    if not line:
        fail("hepml info: no input 'features'")
    x = np.sin(np.float32(0.1) * np.arange(BATCH * 16, dtype=np.float32)).astype(np.float32).reshape(BATCH, 16)
    np.save(os.path.join(tmp, "features.npy"), x)
    out = os.path.join(tmp, "ref")
    run([a.hepml, "run", os.path.join(a.source, MODEL), "-i", f"features={tmp}/features.npy", "-o", out])
    return np.load(os.path.join(out, "class_probabilities.npy"))


def check_output(text, ref, what):
    lines = [l for l in text.splitlines() if l.startswith("output ")]
    if len(lines) != 1:
        fail(f"{what}: expected one output line, got {text!r}")
    parts = lines[0].split()
    name, dtype, shape = parts[1], parts[2], parts[3]
    if name != "class_probabilities" or dtype != "float32" or shape != f"[{BATCH},5]":
        fail(f"{what}: output {name} {dtype} {shape}, expected class_probabilities float32 [{BATCH},5]")
    values = np.array([float(v) for v in parts[4:]], dtype=np.float32).reshape(BATCH, 5)
    err = float(np.max(np.abs(values - ref)))
    if err > 1e-5:
        fail(f"{what}: max abs difference {err} from `hepml run`")
    print(f"ok {what}: [{BATCH},5], max abs diff {err:.2e}")


def consumer_cmake(a, prefix, build, static):
    src = os.path.join(a.source, "tests/install/consumer")
    run(["cmake", "-S", src, "-B", build, "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DHEPML_CONSUMER_STATIC={'ON' if static else 'OFF'}"])
    run(["cmake", "--build", build])
    exe = os.path.join(build, "consumer")
    return exe


def consumer_pkgconfig(a, prefix, libdir, out, pc):
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
    flags = run(["pkg-config", "--cflags", "--libs", pc], env=env).split()
    # The flags must reach only the installed headers, never the source tree.
    for f in flags:
        inc = os.path.realpath(f[2:])
        if f.startswith("-I") and any(inc.startswith(os.path.join(os.path.realpath(a.source), d)) for d in ("src", "include")):
            fail(f"pkg-config {pc} points into the source tree: {f}")
    cmd = ["c++", "-std=c++20", "-O1", os.path.join(a.source, "tests/install/consumer/main.cc"), "-o", out] + flags
    if pc == "hepml":
        cmd.append(f"-Wl,-rpath,{libdir}")
    run(cmd)
    return out


def find_libdir(prefix):
    for d in ("lib", "lib/x86_64-linux-gnu", "lib64"):
        if os.path.exists(os.path.join(prefix, d, "libhepml.so")):
            return os.path.join(prefix, d)
    fail(f"no libhepml.so under {prefix}")


def check_layout(a, prefix):
    headers = sorted(os.listdir(os.path.join(prefix, "include/hepml")))
    # The core build installs the core's public headers, and only them (no
    # header of a part whose library is not installed).
    core = ["session.h", "status.h", "tensor.h"]
    if headers != core:
        fail(f"installed headers {headers} are not the core's public headers {core}")
    for h in headers:
        with open(os.path.join(prefix, "include/hepml", h)) as f, \
                open(os.path.join(a.source, "include/hepml", h)) as g:
            if f.read() != g.read():
                fail(f"installed include/hepml/{h} differs from the source's")
    others = [d for d in os.listdir(os.path.join(prefix, "include")) if d != "hepml"]
    if others:
        fail(f"include/ holds more than hepml/: {others}")
    # No private header leaks through an installed one.
    for h in headers:
        for line in open(os.path.join(prefix, "include/hepml", h)):
            if line.startswith("#include \"") and not line.startswith("#include \"hepml/") \
                    and not line.startswith("#include \"absl/") and not line.startswith("#include \"oneapi/"):
                fail(f"include/hepml/{h} includes a non-public header: {line.strip()}")
    libdir = find_libdir(prefix)
    for f in ("libhepml.a", "cmake/hepml/hepmlConfig.cmake", "cmake/hepml/hepmlTargets.cmake",
              "pkgconfig/hepml.pc", "pkgconfig/hepml-static.pc"):
        if not os.path.exists(os.path.join(libdir, f)):
            fail(f"missing {libdir}/{f}")
    if not os.access(os.path.join(prefix, "bin/hepml"), os.X_OK):
        fail("missing bin/hepml")
    # Only the bundled core: no per-folder libraries.
    stray = [f for f in os.listdir(libdir) if f.startswith("libhepml_")]
    if stray:
        fail(f"internal libraries installed: {stray}")
    print(f"ok layout: {len(headers)} public headers, {libdir}")
    return libdir


def cmd_consume(a):
    prefix = os.path.join(a.work, "prefix")
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference(a, tmp)
        libdir = check_layout(a, prefix)
        model = os.path.join(a.source, MODEL)
        exe = consumer_cmake(a, prefix, os.path.join(a.work, "consumer-shared"), static=False)
        needed = run(["readelf", "-d", exe])
        if "libhepml.so" not in needed:
            fail("find_package consumer is not linked to libhepml.so")
        check_output(run([exe, model, str(BATCH)]), ref, "find_package hepml::runtime")
        exe = consumer_cmake(a, prefix, os.path.join(a.work, "consumer-static"), static=True)
        if "libhepml.so" in run(["readelf", "-d", exe]):
            fail("static consumer needs libhepml.so")
        check_output(run([exe, model, str(BATCH)]), ref, "find_package hepml::runtime_static")
        exe = consumer_pkgconfig(a, prefix, libdir, os.path.join(tmp, "pc-shared"), "hepml")
        check_output(run([exe, model, str(BATCH)]), ref, "pkg-config hepml")
        exe = consumer_pkgconfig(a, prefix, libdir, os.path.join(tmp, "pc-static"), "hepml-static")
        check_output(run([exe, model, str(BATCH)]), ref, "pkg-config hepml-static")
        # The installed command runs from the prefix too.
        out = run([os.path.join(prefix, "bin/hepml"), "info", model])
        if "class_probabilities" not in out:
            fail("installed hepml info does not list the model's output")
        # A bad model is a Status, not a crash, through the installed library.
        bad = os.path.join(tmp, "bad.onnx")
        open(bad, "wb").write(b"not a model")
        res = subprocess.run([exe, bad], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if res.returncode != 1 or "bad.onnx" not in res.stderr:
            fail(f"bad model: exit {res.returncode}, stderr {res.stderr!r}")
        print("ok bad model:", res.stderr.strip()[:120])


def cmd_deb(a):
    debs = glob.glob(os.path.join(a.work, "deb", "*.deb"))
    if len(debs) != 1:
        fail(f"no .deb in {a.work}/deb (run the build step)")
    deb = debs[0]
    info = run(["dpkg-deb", "-f", deb, "Package", "Version", "Depends"])
    for dep in ("libtbb12", "libabsl20220623", "libonnx1", "libprotobuf32", "libabsl-dev", "libtbb-dev"):
        if dep not in info:
            fail(f"package Depends lacks {dep}: {info}")
    # Every Debian dependency named is a package this system knows.
    depends = [d.strip().split()[0] for d in info.split("Depends:")[1].split(",")]
    for d in depends:
        run(["dpkg-query", "-W", d])
    contents = run(["dpkg-deb", "-c", deb])
    for path in ("./usr/include/hepml/session.h", "./usr/bin/hepml", "libhepml.so", "libhepml.a", "hepml.pc",
                 "hepmlConfig.cmake"):
        if path not in contents:
            fail(f"{deb} lacks {path}")
    if "/src/" in contents or "graph.h" in contents:
        fail(f"{deb} ships private headers")
    root = os.path.join(a.work, "deb-root")
    shutil.rmtree(root, ignore_errors=True)
    run(["dpkg", "-x", deb, root])
    prefix = os.path.join(root, "usr")
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference(a, tmp)
        check_layout(a, prefix)
        libdir = find_libdir(prefix)
        model = os.path.join(a.source, MODEL)
        exe = consumer_cmake(a, prefix, os.path.join(a.work, "consumer-deb"), static=False)
        check_output(run([exe, model, str(BATCH)]), ref, "deb: find_package hepml::runtime")
        exe = consumer_pkgconfig(a, prefix, libdir, os.path.join(tmp, "pc-deb"), "hepml")
        check_output(run([exe, model, str(BATCH)]), ref, "deb: pkg-config hepml")


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmd_services(a):
    """The main build (with the services) installed: RemoteSession's header and
    libhepml_remote.so, a consumer of hepml::remote run against the installed
    `hepml serve` and then on its local fallback, and the installed Python
    module."""
    import signal
    import time
    prefix = os.path.join(a.work, "services-prefix")
    shutil.rmtree(prefix, ignore_errors=True)
    run(["cmake", "--install", a.main_build, "--prefix", prefix])
    headers = sorted(os.listdir(os.path.join(prefix, "include/hepml")))
    want = ["remote_session.h", "session.h", "status.h", "tensor.h"]
    if headers != want:
        fail(f"installed headers {headers}, expected {want}")
    libdir = find_libdir(prefix)
    for f in ("libhepml_remote.so", "libhepml.so", "libhepml.a"):
        if not os.path.exists(os.path.join(libdir, f)):
            fail(f"missing {libdir}/{f}")
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference(a, tmp)
        build = os.path.join(a.work, "remote-consumer")
        shutil.rmtree(build, ignore_errors=True)
        run(["cmake", "-S", os.path.join(a.source, "tests/install/remote_consumer"), "-B", build, "-G", "Ninja",
             f"-DCMAKE_PREFIX_PATH={prefix}"])
        run(["cmake", "--build", build])
        exe = os.path.join(build, "remote_consumer")
        if "libhepml_remote.so" not in run(["readelf", "-d", exe]):
            fail("the remote consumer is not linked to libhepml_remote.so")
        model = os.path.join(a.source, MODEL)
        port = free_port()
        log = open(os.path.join(tmp, "serve.log"), "w")
        server = subprocess.Popen([os.path.join(prefix, "bin/hepml"), "serve", "--model-repository",
                                   os.path.join(a.source, "examples/model_repository"), "--http-port", "-1",
                                   "--metrics-port", "-1", "--grpc-port", str(port)],
                                  stdout=subprocess.PIPE, stderr=log, text=True)
        try:
            line = server.stdout.readline()
            if "GRPCInferenceService" not in line:
                fail(f"installed hepml serve did not start: {line!r}")
            out = run([exe, "trigger_mlp", "-", str(BATCH), f"127.0.0.1:{port}"])
            check_output(out, ref, "installed hepml::remote against the installed hepml serve")
            if "stats remote=1 fallback=0" not in out:
                fail(f"expected the call answered by the server: {out.splitlines()[-1]}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        # The server is gone: the local fallback answers.
        out = run([exe, "trigger_mlp", model, str(BATCH), f"127.0.0.1:{port}"])
        check_output(out, ref, "installed hepml::remote on its local fallback")
        if "stats remote=0 fallback=1" not in out:
            fail(f"expected the call answered by the fallback: {out.splitlines()[-1]}")
        # No server and no fallback: a clear error, not a crash.
        res = subprocess.run([exe, "trigger_mlp", "-", str(BATCH), f"127.0.0.1:{port}"], capture_output=True, text=True)
        if res.returncode != 1 or f"127.0.0.1:{port}" not in res.stderr:
            fail(f"no server: exit {res.returncode}, stderr {res.stderr!r}")
        print("ok no server:", res.stderr.strip()[:120])
        # The installed Python module.
        pydir = os.path.join(prefix, "lib/python3/dist-packages")
        if not glob.glob(os.path.join(pydir, "hepml*.so")) or not os.path.exists(os.path.join(pydir, "hepml.pyi")):
            fail(f"the Python module is not installed in {pydir}")
        code = ("import sys, numpy as np, hepml; s = hepml.Session(sys.argv[1]); "
                "x = np.sin(np.float32(0.1) * np.arange(4 * 16, dtype=np.float32)).reshape(4, 16); "
                "np.save(sys.argv[2], s.run({'features': x})[0])")
        env = dict(os.environ, PYTHONPATH=pydir)
        run(["/usr/bin/python3", "-c", code, model, os.path.join(tmp, "py.npy")], env=env, cwd=tmp)
        err = float(np.max(np.abs(np.load(os.path.join(tmp, "py.npy")) - ref)))
        if err > 1e-5:
            fail(f"installed Python module: max abs difference {err} from `hepml run`")
        print(f"ok installed Python module: max abs diff {err:.2e}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("step", choices=["build", "consume", "deb", "services"])
    p.add_argument("--source", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--build-type", default="Release")
    p.add_argument("--build", help="build folder of the build step (default WORK/build)")
    p.add_argument("--hepml")
    p.add_argument("--main-build", help="the build with the services (services step)")
    a = p.parse_args()
    a.source = os.path.abspath(a.source)
    a.work = os.path.abspath(a.work)
    if a.build:
        a.build = os.path.abspath(a.build)
    os.makedirs(a.work, exist_ok=True)
    {"build": cmd_build, "consume": cmd_consume, "deb": cmd_deb, "services": cmd_services}[a.step](a)


if __name__ == "__main__":
    main()

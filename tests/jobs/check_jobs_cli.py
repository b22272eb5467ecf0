#!/usr/bin/env python3
"""`hepml jobs` end to end with the real binary on an embedded registry: a
trigger on a dataset, `watch --once` runs the training job (through the
HTCondor executor against tests/jobs/htcondor_standin.py, a test stand-in for
HTCondor, not HTCondor), registers its output and moves the alias; a second
`watch --once` does nothing; `history` and `trigger list` show what happened;
drift reports fire a drift trigger; bad input gives one line on stderr and exit
1 (2 for a bad command line). Ends 'N passed, M failed'."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "..", "fuzz", "corpus", "fuzz_onnx", "mlp.onnx")

passed = failed = 0


def check(cond, what, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL: %s %s" % (what, detail))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="hepml-jobs-cli-")
    try:
        run(args.hepml, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def run(hepml, tmp):
    reg = os.path.join(tmp, "registry")
    bin_dir = os.path.join(tmp, "bin")
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "htcondor_standin.py"), "--make-bin", bin_dir], check=True)
    env = dict(os.environ, HEPML_CONDOR_STANDIN_DIR=os.path.join(tmp, "condor-state"))
    env.pop("HEPML_REGISTRY", None)

    def jobs(*a, expect=0):
        p = subprocess.run([hepml, "jobs", "--registry", reg] + list(a), capture_output=True, text=True, env=env)
        check(p.returncode == expect, "hepml jobs %s: exit %d" % (" ".join(a), p.returncode), p.stderr + p.stdout)
        return p

    def registry(*a):
        p = subprocess.run([hepml, "registry", "--registry", reg] + list(a), capture_output=True, text=True, env=env)
        check(p.returncode == 0, "hepml registry %s" % " ".join(a), p.stderr)
        return p

    registry("init")
    metric = os.path.join(tmp, "metric.txt")
    with open(metric, "w") as f:
        f.write("hepml-metric auc=0.9\n")
    job = os.path.join(tmp, "retrain.yaml")
    with open(job, "w") as f:
        f.write("command: \"cp '%s' {out} && cat '%s'\"\n" % (os.path.abspath(MODEL), metric))
        f.write("model: btag\noutput: model.onnx\nmetric: {name: auc, direction: maximize}\n")
        f.write("alias: production\npolicy: {promote_if: better_or_equal}\ndataset: jets\ndrift_threshold: 0.5\n")
        f.write("executor: {kind: htcondor, bin_dir: '%s'}\nresources: {cpus: 1, memory_mb: 100}\n" % bin_dir)

    p = jobs("trigger", "add", "--on", "dataset:jets", "--run", job)
    check("on dataset:jets" in p.stdout, "trigger add prints the trigger", p.stdout)
    data = os.path.join(tmp, "jets.csv")
    with open(data, "w") as f:
        f.write("pt\n1\n")
    registry("dataset", "add", "jets", data)

    p = jobs("watch", "--once", "--poll", "0.2")
    check("dataset jets@1: promoted version 1" in p.stdout, "watch --once promotes the new version", p.stdout)
    p = jobs("watch", "--once", "--poll", "0.2")
    check(p.stdout.strip() == "nothing to do", "a second watch --once does nothing", p.stdout)
    p = registry("alias", "show", "btag", "production")
    check("1" in p.stdout, "btag@production is version 1", p.stdout)

    p = jobs("--json", "history")
    h = json.loads(p.stdout)
    check(len(h) == 1 and h[0]["decision"] == "promoted" and h[0]["version"] == 1 and h[0]["metric"] == 0.9,
          "history --json shows the decision", p.stdout)
    p = jobs("--json", "trigger", "list")
    t = json.loads(p.stdout)
    check(len(t) == 1 and t[0]["on"] == "dataset:jets" and t[0]["job_file"] == job, "trigger list --json", p.stdout)

    # Drift: the threshold is crossed once, then the model is retrained on jets@1.
    jobs("trigger", "add", "--on", "drift:btag", "--run", job)
    jobs("drift", "report", "btag", "0.2")
    p = jobs("watch", "--once", "--poll", "0.2")
    check(p.stdout.strip() == "nothing to do", "drift below the threshold does not fire", p.stdout)
    with open(metric, "w") as f:
        f.write("hepml-metric auc=0.8\n")  # worse than production's 0.9
    jobs("drift", "report", "btag", "0.7")
    p = jobs("watch", "--once", "--poll", "0.2")
    check("drift btag 0.7 >= 0.5: registered version 2" in p.stdout and "not >= 0.9" in p.stdout,
          "drift above the threshold retrains; the worse model is registered, not promoted", p.stdout)

    # A removed trigger stays out of the list and does not fire.
    p = jobs("--json", "trigger", "list")
    drift_id = [x["id"] for x in json.loads(p.stdout) if x["on"] == "drift:btag"][0]
    jobs("trigger", "rm", str(drift_id))
    p = jobs("--json", "trigger", "list")
    check([x["on"] for x in json.loads(p.stdout)] == ["dataset:jets"], "trigger rm", p.stdout)
    p = jobs("trigger", "rm", str(drift_id), expect=1)
    check("no trigger" in p.stderr, "removing twice is an error", p.stderr)

    # SIGTERM while a training job runs: the job is cancelled, the firing recorded, the watcher exits.
    slow = os.path.join(tmp, "slow.yaml")
    pid_file = os.path.join(tmp, "slow.pid")
    with open(slow, "w") as f:
        f.write("command: \"echo $$ > '%s'; exec sleep 300\"\n" % pid_file)
        f.write("model: slow\nmetric: auc\nexecutor: {kind: htcondor, bin_dir: '%s'}\n" % bin_dir)
    jobs("trigger", "add", "--on", "dataset:slowdata", "--run", slow)
    registry("dataset", "add", "slowdata", data)
    w = subprocess.Popen([hepml, "jobs", "--registry", reg, "watch", "--once", "--poll", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(300):
        if os.path.exists(pid_file) and open(pid_file).read().strip():
            break
        time.sleep(0.05)
    job_pid = int(open(pid_file).read())
    w.send_signal(signal.SIGTERM)
    out, err = w.communicate(timeout=60)
    check(w.returncode == 0 and "the watcher was stopped" in out, "SIGTERM stops the watcher", out + err)
    gone = False
    for _ in range(100):
        try:
            os.kill(job_pid, 0)
        except ProcessLookupError:
            gone = True
            break
        time.sleep(0.05)
    check(gone, "the running training job was cancelled")
    p = jobs("--json", "history")
    check(json.loads(p.stdout)[0]["decision"] == "failed", "the stopped firing is recorded as failed", p.stdout)

    # Bad input.
    p = jobs("drift", "report", "btag", "high", expect=2)
    check("not a number" in p.stderr, "drift value must be a number", p.stderr)
    bad = os.path.join(tmp, "bad.yaml")
    with open(bad, "w") as f:
        f.write("command: x\nmodel: m\nmetric: auc\nretries: 3\n")
    p = jobs("trigger", "add", "--on", "dataset:jets", "--run", bad, expect=1)
    check("unknown key 'retries'" in p.stderr and p.stderr.count("\n") == 1, "unknown job file key named", p.stderr)
    p = jobs("trigger", "add", "--on", "weekly", "--run", job, expect=1)
    check("expected dataset:NAME" in p.stderr, "bad --on named", p.stderr)
    p = subprocess.run([hepml, "jobs", "history"], capture_output=True, text=True, env=env)
    check(p.returncode == 2 and "no registry" in p.stderr, "no registry is a usage error", p.stderr)
    p = subprocess.run([hepml, "jobs", "--registry", os.path.join(tmp, "nothing"), "history"], capture_output=True,
                       text=True, env=env)
    check(p.returncode == 1 and p.stderr.startswith("hepml jobs: "), "a missing registry is an error", p.stderr)


if __name__ == "__main__":
    main()

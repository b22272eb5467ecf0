#!/usr/bin/env python3
"""`hepml hpo run` killed mid-study, then `hepml hpo resume`: the real command
on a tiny study whose trials print metric lines.

1. SIGKILL of the runner: its trials keep running (their own process groups);
   resume re-attaches them. No finished trial is lost or run again, trial
   numbers never repeat, and the complete trials add up to the budget.
2. SIGTERM of the runner: it cancels its running trials (their processes end),
   records them as lost and exits 1; resume runs their parameters again.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

STUDY = """name: {name}
command: |
  echo $$ > pid
  for s in 0 1 2 3 4; do
    echo "hepml-metric loss=$(awk "BEGIN {{{{ print {{x}} * (5 - $s) }}}}") step=$s"
    sleep 0.15
  done
space:
  x: {{type: float, low: 0.0, high: 1.0}}
objective: {{metric: loss, direction: minimize}}
sampler: {{kind: random, seed: 7}}
budget: {{trials: {trials}, parallel: 2}}
"""


def status(hepml, name, cwd):
    out = subprocess.run([hepml, "hpo", "status", name, "--json"], cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["trials"]


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    sys.exit(f"FAIL: timed out waiting for {what}")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def check_consistent(trials, budget, before):
    numbers = [t["trial"] for t in trials]
    assert numbers == list(range(len(numbers))), f"trial numbers {numbers}"
    complete = [t for t in trials if t["state"] == "complete" and not t["lost"]]
    assert len(complete) == budget, f"{len(complete)} complete trials, budget {budget}: {trials}"
    # Each parameter set finished once: the retries of lost trials replace them.
    xs = [t["params"]["x"] for t in complete]
    assert len(set(xs)) == len(xs), f"a parameter set finished twice: {xs}"
    # What had finished before the kill is still there, unchanged.
    for t in before:
        if t["state"] in ("complete", "pruned", "failed"):
            now = trials[t["trial"]]
            assert now["state"] == t["state"] and now["value"] == t["value"], (t, now)
    for t in trials:
        if t["lost"]:
            retries = [r for r in trials if r["params"] == t["params"] and not r["lost"]]
            assert len(retries) == 1, f"lost trial {t['trial']} was not run again exactly once"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hepml", required=True)
    args = ap.parse_args()
    hepml = os.path.abspath(args.hepml)
    with tempfile.TemporaryDirectory(prefix="hepml_hpo_resume_") as d:
        # 1. SIGKILL: trials survive and are re-attached.
        with open(os.path.join(d, "kill.yaml"), "w") as f:
            f.write(STUDY.format(name="killed", trials=8))
        runner = subprocess.Popen([hepml, "hpo", "run", "kill.yaml", "--quiet"], cwd=d)
        wait_for(lambda: (lambda t: t is not None and sum(x["state"] == "complete" for x in t) >= 2
                          and any(x["state"] == "running" for x in t))(status(hepml, "killed", d)),
                 60, "two complete trials and a running one")
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        before = status(hepml, "killed", d)
        running = [t for t in before if t["state"] == "running"]
        print(f"killed the runner with {sum(t['state'] == 'complete' for t in before)} complete, "
              f"{len(running)} running")
        rc = subprocess.run([hepml, "hpo", "resume", "killed"], cwd=d, timeout=120).returncode
        assert rc == 0, f"resume exited {rc}"
        after = status(hepml, "killed", d)
        check_consistent(after, 8, before)
        for t in running:
            assert not after[t["trial"]]["lost"], f"trial {t['trial']} was running and should have been re-attached"
        print(f"resume: {len(after)} trials recorded, {sum(t['lost'] for t in after)} lost")

        # 2. SIGTERM: running trials are cancelled and run again on resume.
        with open(os.path.join(d, "term.yaml"), "w") as f:
            f.write(STUDY.format(name="termed", trials=6))
        runner = subprocess.Popen([hepml, "hpo", "run", "term.yaml", "--quiet"], cwd=d,
                                  stderr=subprocess.PIPE, text=True)
        wait_for(lambda: (lambda t: t is not None and sum(x["state"] == "running" for x in t) >= 1
                          and sum(x["state"] == "complete" for x in t) >= 1)(status(hepml, "termed", d)),
                 60, "a complete and a running trial")
        before = status(hepml, "termed", d)
        running = [t for t in before if t["state"] == "running"]
        runner.send_signal(signal.SIGTERM)
        _, err = runner.communicate(timeout=60)
        assert runner.returncode == 1, f"interrupted runner exited {runner.returncode}: {err}"
        assert "interrupted" in err, err
        mid = status(hepml, "termed", d)
        for t in running:
            pid = int(open(os.path.join(t["trial_dir"], "pid")).read())
            assert not alive(pid), f"trial {t['trial']} (pid {pid}) still runs after SIGTERM of the runner"
            assert mid[t["trial"]]["lost"], f"trial {t['trial']} should be recorded as lost"
        rc = subprocess.run([hepml, "hpo", "resume", "termed", "--quiet"], cwd=d, timeout=120).returncode
        assert rc == 0, f"resume exited {rc}"
        after = status(hepml, "termed", d)
        check_consistent(after, 6, before)
        assert sum(t["lost"] for t in after) >= len(running)
        best = json.loads(subprocess.run([hepml, "hpo", "best", "termed", "--json"], cwd=d, capture_output=True,
                                         text=True, check=True).stdout)
        assert best["value"] == min(t["value"] for t in after if t["state"] == "complete"), best
        # Usage errors and unknown studies.
        r = subprocess.run([hepml, "hpo", "status", "nope"], cwd=d, capture_output=True, text=True)
        assert r.returncode == 1 and "no study named nope" in r.stderr, r.stderr
        r = subprocess.run([hepml, "hpo", "run", "kill.yaml"], cwd=d, capture_output=True, text=True)
        assert r.returncode == 1 and "exists in this registry already" in r.stderr, r.stderr
    print("PASS")


if __name__ == "__main__":
    main()

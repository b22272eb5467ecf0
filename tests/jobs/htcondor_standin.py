#!/usr/bin/python3
# Test stand-in for HTCondor: NOT HTCondor. HTCondor is not packaged for
# Debian 12, so the tests of hepml's HTCondor executor run it against this
# script, installed into a temporary bin folder as condor_submit, condor_q,
# condor_history and condor_rm (see make_bin). It runs each job on this
# machine, at once, and answers in HTCondor's formats:
#
#   condor_submit [-terse] FILE   reads a submit description file as the
#       HTCondor manual describes it (one "command = value" a line, "+Attr =
#       value" custom attributes, "queue [N]"); arguments and environment must
#       use the manual's new syntax (the whole value in double quotes, ""
#       for a literal ", whitespace-separated words, single quotes around a
#       word with spaces, '' for a literal '). Stricter than condor_submit:
#       a command it does not know is an error, so a typo in what hepml writes
#       fails the tests. -terse prints "C.0 - C.0".
#   condor_q -json [C.P] [-attributes A,B]       the queue's job ads, a JSON
#       array, nothing when no job matches.
#   condor_history -json [C.P] [-limit N] [-attributes A,B]   finished ads.
#   condor_rm C.P                 SIGTERM to the job's process group, SIGKILL
#       two seconds later; JobStatus 3.
#
# Job ads carry ClusterId, ProcId, JobStatus (1 idle, 2 running, 3 removed,
# 4 completed), Cmd, Arguments, Iwd, RequestCpus, RequestGpus, RequestMemory,
# Environment, ExitCode, ExitBySignal, ExitSignal, RemoteWallClockTime,
# RemoteUserCpu, RemoteSysCpu, ResidentSetSize_RAW (KiB), RemoveReason,
# EnteredCurrentStatus. +MaxRuntime = N removes a job running longer than N
# seconds with RemoveReason naming PeriodicRemove, as the periodic_remove
# expression hepml writes would.
#
# State lives in $HEPML_CONDOR_STANDIN_DIR (required): queue/C.json,
# history/C.json, next_cluster, lock.
import fcntl
import json
import os
import signal
import sys
import time

KNOWN_COMMANDS = {
    "universe", "executable", "arguments", "initialdir", "output", "error", "log", "request_cpus",
    "request_gpus", "request_memory", "environment", "periodic_remove", "accounting_group",
    "batch_name", "getenv", "requirements", "kill_sig_timeout",
}


def die(tool, message, code=1):
    sys.stderr.write("%s: ERROR: %s\n" % (tool, message))
    sys.exit(code)


def state_dir(tool):
    d = os.environ.get("HEPML_CONDOR_STANDIN_DIR")
    if not d:
        die(tool, "HEPML_CONDOR_STANDIN_DIR is not set (the test stand-in needs a state folder)")
    for sub in ("queue", "history"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    return d


class Lock:
    def __init__(self, d):
        self.f = open(os.path.join(d, "lock"), "a+")

    def __enter__(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)


def parse_new_syntax(value, what):
    """The manual's new syntax: returns the list of words, or raises ValueError."""
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError("%s must use the new syntax (surrounded by double quotes): %s" % (what, value))
    s = value[1:-1]
    words, cur, in_word, quoted, i = [], "", False, False, 0
    while i < len(s):
        c = s[i]
        if c == '"':
            if i + 1 < len(s) and s[i + 1] == '"':
                cur += '"'
                in_word = True
                i += 2
                continue
            raise ValueError("%s: a lone double quote inside the value (write \"\" for one)" % what)
        if c == "'":
            if quoted and i + 1 < len(s) and s[i + 1] == "'":
                cur += "'"
                i += 2
                continue
            quoted = not quoted
            in_word = True
            i += 1
            continue
        if c in " \t" and not quoted:
            if in_word:
                words.append(cur)
            cur, in_word = "", False
            i += 1
            continue
        cur += c
        in_word = True
        i += 1
    if quoted:
        raise ValueError("%s: unbalanced single quote" % what)
    if in_word:
        words.append(cur)
    return words


def parse_submit(tool, path):
    try:
        lines = open(path).read().split("\n")
    except OSError as e:
        die(tool, "cannot read submit file %s: %s" % (path, e))
    commands, custom, queued = {}, {}, None
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        low = line.lower()
        if low == "queue" or low.startswith("queue "):
            rest = line[5:].strip()
            queued = int(rest) if rest else 1
            continue
        if "=" not in line:
            die(tool, "%s line %d: expected 'command = value': %s" % (path, n, line))
        key, value = line.split("=", 1)
        key, value = key.strip(), value.strip()
        if key.startswith("+") or key.startswith("MY."):
            custom[key.lstrip("+").replace("MY.", "", 1)] = value
            continue
        if key.lower() not in KNOWN_COMMANDS:
            die(tool, "%s line %d: unknown submit command '%s' (test stand-in)" % (path, n, key))
        commands[key.lower()] = value
    if queued is None:
        die(tool, "%s: no queue command" % path)
    return commands, custom, queued


def submit(argv):
    tool = "condor_submit"
    terse = "-terse" in argv
    files = [a for a in argv if not a.startswith("-")]
    if len(files) != 1:
        die(tool, "usage: condor_submit [-terse] FILE")
    d = state_dir(tool)
    c, custom, count = parse_submit(tool, files[0])
    if c.get("universe", "vanilla") != "vanilla":
        die(tool, "only the vanilla universe is supported by the test stand-in")
    exe = c.get("executable")
    if not exe or not os.access(exe, os.X_OK):
        die(tool, "executable %r is missing or not executable" % exe)
    try:
        args = parse_new_syntax(c["arguments"], "arguments") if "arguments" in c else []
        env_words = parse_new_syntax(c["environment"], "environment") if "environment" in c else []
    except ValueError as e:
        die(tool, str(e))
    env = {}
    for w in env_words:
        if "=" not in w:
            die(tool, "environment entry %r is not NAME=VALUE" % w)
        k, v = w.split("=", 1)
        env[k] = v
    for k in ("request_cpus", "request_gpus", "request_memory"):
        if k in c and not c[k].isdigit():
            die(tool, "%s = %s is not a whole number" % (k, c[k]))
    iwd = c.get("initialdir", os.getcwd())
    if not os.path.isdir(iwd):
        die(tool, "initialdir %s does not exist" % iwd)
    with Lock(d):
        counter = os.path.join(d, "next_cluster")
        cluster = int(open(counter).read()) if os.path.exists(counter) else 1
        open(counter, "w").write(str(cluster + 1))
        ad = {
            "ClusterId": cluster, "ProcId": 0, "JobStatus": 1, "Cmd": exe, "Arguments": args, "Iwd": iwd,
            "Out": c.get("output", "/dev/null"), "Err": c.get("error", "/dev/null"), "UserLog": c.get("log", ""),
            "RequestCpus": int(c.get("request_cpus", "1")), "RequestGpus": int(c.get("request_gpus", "0")),
            "RequestMemory": int(c.get("request_memory", "0")), "Environment": env,
            "EnteredCurrentStatus": int(time.time()), "QDate": int(time.time()),
        }
        if "MaxRuntime" in custom:
            ad["MaxRuntime"] = int(custom["MaxRuntime"])
        write_ad(d, "queue", ad)
    log_event(ad, "000", "Job submitted from host: <127.0.0.1:0>")
    # The runner: a grandchild in its own session, so condor_submit returns at once.
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            run_job(d, cluster)
            os._exit(0)
        os._exit(0)
    os.wait()
    if terse:
        print("%d.0 - %d.0" % (cluster, cluster))
    else:
        print("Submitting job(s).\n1 job(s) submitted to cluster %d." % cluster)


def write_ad(d, where, ad):
    path = os.path.join(d, where, "%d.json" % ad["ClusterId"])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ad, f)
    os.replace(tmp, path)


def read_ad(d, where, cluster):
    try:
        return json.load(open(os.path.join(d, where, "%d.json" % cluster)))
    except (OSError, ValueError):
        return None


def log_event(ad, code, text):
    if not ad.get("UserLog"):
        return
    with open(ad["UserLog"], "a") as f:
        f.write("%s (%03d.000.000) %s %s\n...\n" % (code, ad["ClusterId"], time.strftime("%Y-%m-%d %H:%M:%S"), text))


def run_job(d, cluster):
    with Lock(d):
        ad = read_ad(d, "queue", cluster)
        if ad is None or ad["JobStatus"] != 1:
            return
        ad["JobStatus"] = 2
        ad["EnteredCurrentStatus"] = int(time.time())
        ad["JobCurrentStartDate"] = int(time.time())
        write_ad(d, "queue", ad)
    log_event(ad, "001", "Job executing on host: <127.0.0.1:0>")
    env = {"PATH": "/usr/bin:/bin", "_CONDOR_SCRATCH_DIR": ad["Iwd"]}
    env.update(ad["Environment"])
    start = time.time()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.chdir(ad["Iwd"])
        out = os.open(ad["Out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        err = os.open(ad["Err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(out, 1)
        os.dup2(err, 2)
        try:
            os.execve(ad["Cmd"], [ad["Cmd"]] + ad["Arguments"], env)
        finally:
            os._exit(127)
    with Lock(d):
        ad = read_ad(d, "queue", cluster)
        ad["StandinPid"] = pid
        write_ad(d, "queue", ad)
    limit = ad.get("MaxRuntime")
    timed_out = False
    while True:
        got, status, usage = os.wait4(pid, os.WNOHANG)
        if got == pid:
            break
        if limit and time.time() - start > limit and not timed_out:
            timed_out = True
            os.killpg(pid, signal.SIGKILL)
        time.sleep(0.05)
    with Lock(d):
        ad = read_ad(d, "queue", cluster) or read_ad(d, "history", cluster)
        ad["RemoteWallClockTime"] = round(time.time() - start, 3)
        ad["RemoteUserCpu"] = round(usage.ru_utime, 3)
        ad["RemoteSysCpu"] = round(usage.ru_stime, 3)
        ad["ResidentSetSize_RAW"] = usage.ru_maxrss
        ad["CompletionDate"] = int(time.time())
        if ad["JobStatus"] != 3:
            if timed_out:
                ad["JobStatus"] = 3
                ad["RemoveReason"] = "The job attribute PeriodicRemove expression evaluated to TRUE"
            else:
                ad["JobStatus"] = 4
                ad["ExitBySignal"] = os.WIFSIGNALED(status)
                if os.WIFSIGNALED(status):
                    ad["ExitSignal"] = os.WTERMSIG(status)
                else:
                    ad["ExitCode"] = os.WEXITSTATUS(status)
            ad["EnteredCurrentStatus"] = int(time.time())
        write_ad(d, "history", ad)
        try:
            os.remove(os.path.join(d, "queue", "%d.json" % cluster))
        except OSError:
            pass
    log_event(ad, "005" if ad["JobStatus"] == 4 else "009", "Job terminated." if ad["JobStatus"] == 4 else "Job was aborted.")


def select(argv):
    """(C.P or None, attribute list or None, limit or None) from condor_q/condor_history arguments."""
    ident, attrs, limit, i = None, None, None, 0
    while i < len(argv):
        a = argv[i]
        if a == "-attributes":
            attrs = argv[i + 1].split(",")
            i += 2
        elif a == "-limit":
            limit = int(argv[i + 1])
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            ident = a
            i += 1
    return ident, attrs, limit


def matches(ad, ident):
    if ident is None:
        return True
    if "." in ident:
        return ident == "%d.%d" % (ad["ClusterId"], ad["ProcId"])
    return ident == str(ad["ClusterId"])


def show(where, tool, argv):
    if "-json" not in argv:
        die(tool, "the test stand-in answers -json only")
    d = state_dir(tool)
    ident, attrs, limit = select(argv)
    ads = []
    with Lock(d):
        for name in sorted(os.listdir(os.path.join(d, where)), key=lambda n: -int(n.split(".")[0])):
            if not name.endswith(".json"):
                continue
            ad = read_ad(d, where, int(name.split(".")[0]))
            if ad and matches(ad, ident):
                if attrs:
                    ad = {k: v for k, v in ad.items() if k in attrs or k in ("ClusterId", "ProcId")}
                ads.append(ad)
    if limit is not None:
        ads = ads[:limit]
    if ads:  # like condor_q -json: nothing at all when no job matches
        print(json.dumps(ads, indent=1))


def remove(argv):
    tool = "condor_rm"
    idents = [a for a in argv if not a.startswith("-")]
    if len(idents) != 1:
        die(tool, "usage: condor_rm CLUSTER.PROC")
    d = state_dir(tool)
    pid = None
    with Lock(d):
        ad = None
        for name in os.listdir(os.path.join(d, "queue")):
            if name.endswith(".json"):
                a = read_ad(d, "queue", int(name.split(".")[0]))
                if a and matches(a, idents[0]):
                    ad = a
        if ad is None:
            print("Couldn't find/remove all jobs matching constraint (ClusterId==%s)" % idents[0].split(".")[0])
            sys.exit(1)
        pid = ad.get("StandinPid")
        ad["JobStatus"] = 3
        ad["RemoveReason"] = "via condor_rm (by user %s)" % os.environ.get("USER", "root")
        ad["EnteredCurrentStatus"] = int(time.time())
        write_ad(d, "queue", ad)
        if pid is None:  # never started: straight to history
            write_ad(d, "history", ad)
            os.remove(os.path.join(d, "queue", "%d.json" % ad["ClusterId"]))
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
            for _ in range(40):
                time.sleep(0.05)
                os.killpg(pid, 0)
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    print("Job %s marked for removal" % idents[0])


def make_bin(folder):
    """Writes condor_submit, condor_q, condor_history, condor_rm into `folder`."""
    os.makedirs(folder, exist_ok=True)
    me = os.path.abspath(__file__)
    for tool in ("condor_submit", "condor_q", "condor_history", "condor_rm"):
        path = os.path.join(folder, tool)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n# test stand-in for HTCondor (tests/jobs/htcondor_standin.py), not HTCondor\n"
                    "exec /usr/bin/python3 '%s' %s \"$@\"\n" % (me, tool))
        os.chmod(path, 0o755)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--make-bin":
        make_bin(sys.argv[2])
        return
    if len(sys.argv) < 2:
        die("htcondor_standin", "usage: htcondor_standin.py TOOL ARGS... | --make-bin FOLDER")
    tool, argv = sys.argv[1], sys.argv[2:]
    if tool == "condor_submit":
        submit(argv)
    elif tool == "condor_q":
        show("queue", tool, argv)
    elif tool == "condor_history":
        show("history", tool, argv)
    elif tool == "condor_rm":
        remove(argv)
    else:
        die("htcondor_standin", "unknown tool %s" % tool)


if __name__ == "__main__":
    main()

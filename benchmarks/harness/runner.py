"""The parent's side: runs each child process (``run.py --child``) one after another, with the
framework's interpreter and thread settings, waits for the machine to go idle before timed
runs, records how busy other processes kept it, and collects failures."""
import json
import os
import subprocess
import sys

from . import OTHER_LOAD_WARN, RUN_PY, log
from .machine import LoadMeter, wait_idle

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "PYCNN_NUM_THREADS")


class Runner:
    def __init__(self, args, tmp):
        self.args = args
        self.tmp = tmp
        self.count = 0
        self.pythons = {}            # framework -> interpreter
        self.skipped = {}            # framework -> reason
        self.errors = []
        self.other_load = []         # (what, cores used by other processes meanwhile)

    def env(self, framework, threads):
        env = dict(os.environ)
        for k in THREAD_VARIABLES:
            env[k] = str(threads)
        if framework == "keras":
            env["KERAS_BACKEND"] = "torch"
        return env

    def wait_idle(self):
        wait_idle(self.args.wait_idle)

    def child(self, task, framework=None, threads=None, **kw):
        """Runs one child; returns its JSON, or None (error recorded) when it fails."""
        self.count += 1
        threads = threads or self.args.threads
        spec = dict(kw, task=task, framework=framework, threads=threads,
                    seed=self.args.seed, data_dir=self.tmp,
                    out=os.path.join(self.tmp, f"out{self.count}.json"))
        spec_path = os.path.join(self.tmp, f"spec{self.count}.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        python = self.pythons.get(framework, sys.executable)
        what = " ".join(x for x in (task, framework, kw.get("model"), f"threads={threads}") if x)
        timed = task != "data"
        if timed:
            self.wait_idle()
        meter = LoadMeter()
        rc, tail = self._run([python, RUN_PY, "--child", spec_path], framework, threads)
        other = meter.other_cores()
        if timed:
            self.other_load.append((what, other))
        if rc != 0 or not os.path.exists(spec["out"]):
            tail = "\n".join(tail.splitlines()[-12:])
            if rc is not None and rc < 0:
                tail = f"killed by signal {-rc}\n" + tail
            self.errors.append((what, tail.strip()))
            log(f"  !! {what} failed (exit {rc}):\n    " + tail.replace("\n", "\n    "))
            return None
        with open(spec["out"]) as f:
            res = json.load(f)
        res["other_load"] = other
        if timed and other is not None and other > OTHER_LOAD_WARN:
            log(f"  (other processes used {other:.2f} cores meanwhile: numbers disturbed)")
        return res

    def _run(self, cmd, framework, threads):
        """(exit code or None when killed for the timeout, the end of its output)."""
        timeout = self.args.child_timeout
        try:
            p = subprocess.run(cmd, env=self.env(framework, threads), capture_output=True,
                               text=True, timeout=timeout)
            return p.returncode, (p.stderr or p.stdout or "").strip()
        except subprocess.TimeoutExpired as e:    # run() has killed the child
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
            return None, (f"timed out after {timeout:.0f} s (killed; hung?)\n"
                          + (err or "")).strip()

    def _check(self, python, code, framework):
        """(the printed version, None) when ``python -c code`` runs, else (None, why not)."""
        try:
            # cwd=tmp: import what the children will import, not ./pycnn in the cwd
            p = subprocess.run([python, "-c", code], capture_output=True, text=True,
                               env=self.env(framework, 1), timeout=300, cwd=self.tmp)
        except (OSError, subprocess.TimeoutExpired) as e:
            return None, f"{type(e).__name__}: {e}"
        if p.returncode == 0:
            return p.stdout.strip(), None
        return None, (p.stderr.strip().splitlines() or ["?"])[-1]

    def probe(self):
        """Which frameworks can run, and with which interpreter."""
        a = self.args
        for fw in a.frameworks:
            if fw == "pycnn":
                candidates = [(sys.executable, "import pycnn; pycnn.Sequential; "
                               "print(getattr(pycnn, '__version__', '?'))")]
            elif fw == "torch":
                candidates = [(sys.executable, "import torch; print(torch.__version__)")]
            else:
                code = "import keras, torch; print(keras.__version__, keras.backend.backend())"
                candidates = [(p, code) for p in ([a.keras_python] if a.keras_python else
                                                  [sys.executable, "/tmp/kerasvenv/bin/python"])]
            errs = []
            for python, code in candidates:
                if not os.path.exists(python):
                    errs.append(f"{python}: not found")
                    continue
                v, err = self._check(python, code, fw)
                if v:
                    self.pythons[fw] = python
                    log(f"  {fw}: {v} ({python})")
                    break
                errs.append(err if fw != "keras" else f"{python}: {err}")
            else:
                self.skipped[fw] = "; ".join(errs)
                log(f"  {fw}: SKIPPED ({self.skipped[fw]})")

"""The machine: CPU model and flags, how busy other processes keep it, and its measured peak
single-precision FMA throughput (``benchmarks/peak.c``)."""
import os
import platform
import shutil
import subprocess
import json
import time

from . import HERE, OTHER_LOAD_WARN, log


def maxrss_mb():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # KiB on Linux


def busy_cpu_s():
    """CPU seconds all processes on the machine have used (busy jiffies in /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = v[3] + (v[4] if len(v) > 4 else 0)          # idle + iowait
    guest = sum(v[8:10]) if len(v) > 9 else 0           # already counted in user/nice
    return (sum(v) - idle - guest) / os.sysconf("SC_CLK_TCK")


def children_cpu_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class LoadMeter:
    """Cores other processes used since the meter started: all busy CPU time (/proc/stat)
    minus this process's children's CPU time, over the wall time."""

    def __init__(self):
        self.busy0, self.kids0, self.t0 = busy_cpu_s(), children_cpu_s(), time.perf_counter()

    def other_cores(self):
        if self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        return max(0.0, ((busy_cpu_s() - self.busy0) - (children_cpu_s() - self.kids0)) / wall)


def wait_idle(limit):
    """Waits (at most ``limit`` seconds) until other processes use less than
    OTHER_LOAD_WARN cores, sampled over one second, before a timed run starts."""
    if not limit or busy_cpu_s() is None:
        return
    t_end, said = time.monotonic() + limit, False
    while True:
        b0 = busy_cpu_s()
        time.sleep(1.0)
        other = busy_cpu_s() - b0
        if other < OTHER_LOAD_WARN:
            if said:
                log("  ... idle now")
            return
        if time.monotonic() > t_end:
            log(f"  ... still busy ({other:.2f} cores) after {limit:.0f} s; running anyway")
            return
        if not said:
            log(f"  waiting up to {limit:.0f} s for other processes to stop using the "
                f"CPU ({other:.2f} cores busy) ...")
            said = True


def run_peak(threads_list, tmp):
    """Compiles and runs peak.c once: (rows, None) or (None, why not)."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        return None, f"no C compiler ({cc})"
    exe = os.path.join(tmp, "peak")
    p = subprocess.run([cc, "-O2", "-pthread", "-o", exe, os.path.join(HERE, "peak.c")],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return None, "peak.c did not compile: " + p.stderr.strip()[-500:]
    p = subprocess.run([exe] + [str(t) for t in threads_list], capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        return None, "peak failed: " + p.stderr.strip()
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return rows, None


def measure_peak(threads_list, tmp, idle_limit):
    """The best of up to 3 runs of peak.c per (ISA, threads): a peak is a ceiling, noise only
    lowers it, so it is measured again while other processes disturbed it.
    Returns (rows or None, error or None, {threads: best GFLOP/s}, other processes' cores)."""
    best, other, err = {}, None, None
    for attempt in range(3):
        wait_idle(idle_limit)
        meter = LoadMeter()
        rows, err = run_peak(threads_list, tmp)
        for r in rows or []:
            k = (r["isa"], r["threads"])
            if k not in best or r["gflops"] > best[k]["gflops"]:
                best[k] = r
        other = meter.other_cores()
        if not rows or other is None or other <= OTHER_LOAD_WARN:
            break
        log(f"  (other processes used {other:.2f} cores meanwhile: peak disturbed"
            + ("; measuring again)" if attempt < 2 else ")"))
    rows = list(best.values()) or None
    peak = {t: max(r["gflops"] for r in rows if r["threads"] == t)
            for t in threads_list} if rows else {}
    return rows, err, peak, other


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return [x for x in ("avx2", "fma", "avx512f", "avx512_bf16") if x in fl]
    except OSError:
        pass
    return []


def numpy_version():
    try:
        import numpy
        return numpy.__version__
    except ImportError:
        return "?"

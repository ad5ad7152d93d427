#!/usr/bin/python3
"""PyTorch and numpy contenders for `npm run bench` (bench/peers/torch.ts runs this; it is not a test).

Run with Debian's interpreter, which is the one that has python3-torch:
    apt-get install -y python3-torch libopenblas0-pthread
    echo '{}' | /usr/bin/python3 scripts/bench-torch.py          # versions and BLAS only

Reads one JSON request on stdin and writes one JSON object on stdout (nothing else goes to stdout;
warnings go to stderr and into the JSON). The request, every key optional:

  {
    "budget": {"measureMs", "warmupMs", "maxRuns", "maxWarmups", "minRuns", "slowRunMs"},  # bench/timing.ts
    "forwardCutoffMs": 5000,         # forward alone is measured only when its first call is faster
    "rnn": {"cell": "gru"|"lstm", "B", "D", "H", "T",
            "inputs": {"x", "dy", "Wx", "Wh", "bx", "bh"}},   # paths of raw little-endian float32 files
    "gemm": {"shapes": [{"M", "K", "N"}, ...], "peak": 1024}, # numpy sgemm (M×K)·(K×N); peak: a square size
    "needTorch": true                # report torch as missing even without "rnn"
  }

Inputs are laid out as in bench/workloads.ts: x [T,B,D], dy [T,B,H] time-major, Wx [D,G·H] and Wh [H,G·H]
("x times W", gates side by side in PyTorch order: GRU r|z|n, LSTM i|f|g|o), bx and bh [G·H]. They go into
torch.nn.GRU / torch.nn.LSTM (batch_first=False, one layer) as weight_ih_l0 = Wx.T, weight_hh_l0 = Wh.T,
bias_ih_l0 = bx, bias_hh_l0 = bh. The loss is (output * dy).sum(), the initial state zero:
  fwd      the loss alone, under torch.no_grad()
  fwd+bwd  the loss and loss.backward() into x and every weight and bias

Timing follows bench/timing.ts exactly: a first call timed on its own, warm-ups, then runs while the next
is expected to fit in measureMs (at least minRuns unless one run takes over slowRunMs, at most maxRuns);
each sample is one call. Timings have the keys of timing.ts's Timing (medianMs, minMs, maxMs, runs,
warmups, firstMs, samplesMs).

The reply: {"ok": true, "info": {...}, "rnn": {...}?, "gemm": [...]?, "peak": {...}?}, or
{"ok": false, "missing": "torch"|"numpy", "error": "..."} when a module cannot be imported (torch only
counts when "rnn" or "needTorch" is asked: the sgemm runs without it, and "info" then has torch: null).
"info" says which BLAS library torch and numpy call: both link Debian's libblas.so.3, which the
alternatives system points at the reference BLAS (netlib, about 18× slower here) unless an optimised one
such as libopenblas0-pthread is installed and selected.
"""
import os

# One thread, set before numpy or torch load their BLAS / OpenMP runtimes.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "GOTO_NUM_THREADS"):
    os.environ[var] = "1"

import json
import platform
import re
import subprocess
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def blas_libraries():
    """BLAS/LAPACK-like shared objects mapped into this process (real paths, as the kernel resolved them)."""
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                p = parts[5]
                name = os.path.basename(p).lower()
                if re.search(r"blas|lapack|mkl|blis|atlas|flexiblas", name) and p not in libs:
                    libs.append(p)
    except OSError:
        pass
    return libs


def classify(path):
    """What kind of BLAS a mapped library is, from the directory Debian installs it in."""
    p = path.lower()
    if "openblas" in p:
        return "OpenBLAS"
    if "blis" in p:
        return "BLIS"
    if "mkl" in p:
        return "MKL"
    if "atlas" in p:
        return "ATLAS"
    if "flexiblas" in p:
        return "FlexiBLAS"
    if re.search(r"/blas/libblas\.so", p):
        return "reference"
    return "unknown"


def blas_kind(libs):
    """The BLAS among the mapped libraries (LAPACK left out), by kind."""
    kinds = [classify(p) for p in libs if "lapack" not in os.path.basename(p).lower()]
    for k in ("OpenBLAS", "BLIS", "MKL", "ATLAS", "FlexiBLAS", "reference"):
        if k in kinds:
            return k
    return "unknown" if kinds else "none found"


def openblas_threads(libs):
    """openblas_get_num_threads() of the OpenBLAS in this process, or None."""
    import ctypes

    for p in libs:
        if "openblas" in os.path.basename(p).lower():
            try:
                return int(ctypes.CDLL(p).openblas_get_num_threads())
            except (OSError, AttributeError):
                pass
    return None


def alternative(name):
    """update-alternatives' current choice for a Debian alternative, or None."""
    try:
        out = subprocess.run(["update-alternatives", "--query", name], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"^Value: (.*)$", out, re.M)
    return m.group(1).strip() if m else None


def debian_version(package):
    try:
        return subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, timeout=10, check=True
        ).stdout or None
    except (OSError, subprocess.SubprocessError):
        return None


# ── timing, as bench/timing.ts ───────────────────────────────────────────────


def now_ms():
    return time.perf_counter_ns() / 1e6


def median(sorted_samples):
    n = len(sorted_samples)
    mid = n >> 1
    return sorted_samples[mid] if n % 2 == 1 else (sorted_samples[mid - 1] + sorted_samples[mid]) / 2


def measure(fn, budget, max_first_ms=float("inf")):
    t0 = now_ms()
    fn()
    first = now_ms() - t0
    if first > max_first_ms:
        return {"abandonedAfterMs": first}

    warmups = 1
    warm_spent = 0.0
    last = first
    while warmups < budget["maxWarmups"] and (
        first <= budget["measureMs"] if warmups == 1 else warm_spent + last <= budget["warmupMs"]
    ):
        t0 = now_ms()
        fn()
        last = now_ms() - t0
        warm_spent += last
        warmups += 1

    samples = []
    spent = 0.0
    while True:
        t0 = now_ms()
        fn()
        last = now_ms() - t0
        samples.append(last)
        spent += last
        if not (
            len(samples) < budget["maxRuns"]
            and (
                spent + last <= budget["measureMs"]
                or (len(samples) < budget["minRuns"] and last <= budget["slowRunMs"])
            )
        ):
            break

    s = sorted(samples)
    return {
        "medianMs": median(s),
        "minMs": s[0],
        "maxMs": s[-1],
        "runs": len(samples),
        "warmups": warmups,
        "firstMs": first,
        "samplesMs": samples,
    }


DEFAULT_BUDGET = {"measureMs": 3000, "warmupMs": 600, "maxRuns": 100, "maxWarmups": 100, "minRuns": 3, "slowRunMs": 6000}


# ── the workloads ────────────────────────────────────────────────────────────


def run_rnn(req, budget, cutoff_ms):
    cell = req["cell"]
    B, D, H, T = (int(req[k]) for k in ("B", "D", "H", "T"))
    G = 3 if cell == "gru" else 4
    GH = G * H
    paths = req["inputs"]

    def load(key, shape):
        a = numpy.fromfile(paths[key], dtype="<f4")
        if a.size != numpy.prod(shape):
            raise ValueError(f"{key}: {a.size} numbers in {paths[key]}, expected {shape}")
        return a.astype(numpy.float32, copy=False).reshape(shape)

    x = torch.from_numpy(load("x", (T, B, D)).copy())
    dy = torch.from_numpy(load("dy", (T, B, H)).copy())
    Wx, Wh = load("Wx", (D, GH)), load("Wh", (H, GH))
    bx, bh = load("bx", (GH,)), load("bh", (GH,))

    module = (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(D, H, num_layers=1, bias=True, batch_first=False)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(numpy.ascontiguousarray(Wx.T)))
        module.weight_hh_l0.copy_(torch.from_numpy(numpy.ascontiguousarray(Wh.T)))
        module.bias_ih_l0.copy_(torch.from_numpy(bx.copy()))
        module.bias_hh_l0.copy_(torch.from_numpy(bh.copy()))
    module.float()
    xg = x.clone().requires_grad_(True)

    def forward():
        with torch.no_grad():
            out, _ = module(x)
            return float((out * dy).sum())

    def forward_backward():
        module.zero_grad(set_to_none=True)
        xg.grad = None
        out, _ = module(xg)
        loss = (out * dy).sum()
        loss.backward()
        return float(loss)

    # fwd+bwd first, so that its first call is the module's first call, as for the other contenders
    result = {"variant": "torch", "forwardBackward": measure(forward_backward, budget)}
    missing = [n for n, p in module.named_parameters() if p.grad is None] + (["x"] if xg.grad is None else [])
    if missing:
        raise RuntimeError(f"no gradient for {', '.join(missing)}")
    t = measure(forward, budget, cutoff_ms)
    if "abandonedAfterMs" in t:
        result["forwardNote"] = f"not measured: its first call took {t['abandonedAfterMs'] / 1000:.1f} s"
    else:
        result["forward"] = t
    result["loss"] = forward()
    return result


def sgemm(M, K, N, budget, lib="numpy"):
    """(M×K)·(K×N) in float32 into a preallocated C: numpy.matmul, or torch.mm for lib="torch"."""
    rng = numpy.random.default_rng(M * 1_000_003 + K * 1009 + N)
    a = rng.standard_normal((M, K), dtype=numpy.float32)
    b = rng.standard_normal((K, N), dtype=numpy.float32)
    c = numpy.empty((M, N), dtype=numpy.float32)
    if lib == "torch":
        ta, tb, tc = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(c)
        fn = lambda: torch.mm(ta, tb, out=tc)
    else:
        fn = lambda: numpy.matmul(a, b, out=c)
    fn()
    if not numpy.allclose(c, a @ b.astype(numpy.float64), rtol=1e-3, atol=1e-3 * K**0.5):
        raise RuntimeError(f"{lib} sgemm {M}x{K}x{N} gives a wrong product")
    t = measure(fn, budget)
    return {"M": M, "K": K, "N": N, "timing": t, "gflops": 2 * M * K * N / t["medianMs"] / 1e6}


# ── main ─────────────────────────────────────────────────────────────────────


def info(libs_numpy, libs_all):
    """Versions, threads, and the BLAS each library calls: libs_numpy were mapped before torch was imported.
    Without torch (torch is None), its entries are None."""
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show()) if torch else None
    selected = alternative("libblas.so.3-x86_64-linux-gnu")
    kind_numpy, kind_torch = blas_kind(libs_numpy), blas_kind(libs_all)
    openblas = debian_version("libopenblas0-pthread")
    warnings = []
    slow = [who for who, kind in (("numpy", kind_numpy), ("torch", kind_torch if torch else None)) if kind == "reference"]
    if slow:
        fix = (
            "libopenblas0-pthread is installed but not selected: update-alternatives --set "
            "libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3"
            if openblas
            else "apt-get install -y libopenblas0-pthread (it then becomes the libblas.so.3 alternative)"
        )
        warnings.append(
            f"{' and '.join(slow)} call{'s' if len(slow) == 1 else ''} the REFERENCE BLAS (netlib libblas3, about 18x "
            f"slower than OpenBLAS here: 5.4 against 97 GFLOP/s at 1024^3), so their times say little about PyTorch or numpy. Fix: {fix}"
        )
    if torch and torch.get_num_threads() != 1:
        warnings.append(f"torch runs {torch.get_num_threads()} threads, not 1")
    blas_threads = openblas_threads(libs_all)
    if blas_threads not in (None, 1):
        warnings.append(f"OpenBLAS runs {blas_threads} threads, not 1")
    return {
        "python": sys.executable,
        "pythonVersion": platform.python_version(),
        "torch": torch.__version__ if torch else None,
        "torchPackage": debian_version("python3-torch"),
        "numpy": numpy.__version__,
        "numpyPackage": debian_version("python3-numpy"),
        "threads": torch.get_num_threads() if torch else None,
        "interopThreads": torch.get_num_interop_threads() if torch else None,
        "mkldnn": bool(torch.backends.mkldnn.is_available()) if torch else None,
        "blas": {
            "numpy": {"kind": kind_numpy, "libraries": libs_numpy},
            "torch": {"kind": kind_torch, "libraries": libs_all, "buildInfo": m.group(1) if m else None}
            if torch
            else None,
            "libblasAlternative": selected,
            "libblasAlternativeKind": classify(selected) if selected else None,
            "openblasPackage": openblas,
            "openblasThreads": blas_threads,
        },
        "warnings": warnings,
    }


def main():
    global numpy, torch
    raw = sys.stdin.read()
    request = json.loads(raw) if raw.strip() else {}
    try:
        import numpy
    except ImportError as e:
        return reply({"ok": False, "missing": "numpy", "error": str(e)})
    numpy.zeros((2, 2), dtype=numpy.float32) @ numpy.zeros((2, 2), dtype=numpy.float32)
    numpy_libs = blas_libraries()
    # numpy's sgemm alone does without torch (torch.mm's peak is then left out)
    need_torch = "rnn" in request or request.get("needTorch", False)
    try:
        import torch
    except ImportError as e:
        if need_torch:
            return reply({"ok": False, "missing": "torch", "error": str(e)})
        torch = None
    if torch:
        torch.set_num_threads(1)
        torch.mm(torch.zeros(2, 2), torch.zeros(2, 2))

    out = {"ok": True, "info": info(numpy_libs, blas_libraries())}
    for w in out["info"]["warnings"]:
        print(f"bench-torch.py: WARNING: {w}", file=sys.stderr)

    budget = {**DEFAULT_BUDGET, **request.get("budget", {})}
    cutoff = float(request.get("forwardCutoffMs", float("inf")))
    if "rnn" in request:
        out["rnn"] = run_rnn(request["rnn"], budget, cutoff)
    if "gemm" in request:
        g = request["gemm"]
        out["gemm"] = [sgemm(int(s["M"]), int(s["K"]), int(s["N"]), budget) for s in g.get("shapes", [])]
        if g.get("peak"):
            n = int(g["peak"])
            out["peak"] = {"numpy": sgemm(n, n, n, budget)}
            if torch:
                out["peak"]["torch"] = sgemm(n, n, n, budget, "torch")
    reply(out)


if __name__ == "__main__":
    main()

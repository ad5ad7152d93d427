#!/usr/bin/python3
"""PyTorch and numpy contenders for `npm run bench` (bench/peers/torch.ts runs this; it is not a test).

Run with Debian's interpreter, which is the one that has python3-torch:
    apt-get install -y python3-torch libopenblas0-pthread
    echo '{}' | /usr/bin/python3 scripts/bench-torch.py          # versions and BLAS only

Reads one JSON request on stdin and writes one JSON object on stdout (nothing else goes to stdout;
warnings go to stderr and into the JSON). The request, every key optional:

  {
    "budget": {"measureMs", "warmupMs", "maxRuns", "maxWarmups", "minRuns", "slowRunMs", "minWarmups"?},  # bench/timing.ts
    "forwardCutoffMs": 5000,         # forward alone is measured only when its first call is faster
    "rnn": {"cell": "gru"|"lstm", "B", "D", "H", "T",
            "inputs": {"x", "dy", "Wx", "Wh", "bx", "bh"}},   # paths of raw little-endian float32 files
    "gemm": {"shapes": [{"M", "K", "N"}, ...], "peak": 1024}, # numpy sgemm (M×K)·(K×N); peak: a square size
    "needTorch": true,               # report torch as missing even without "rnn"
    "zoo": {"cell", "B", "T", "sizes": {"D", "H"}, "peers": ["eager", "torchscript"],
            "params": {name: {"file", "shape"}},     # float64 files, the peer's own names and shapes
            "x", "initial": {state: ...}, "upstream": {name: ...},  # each {"file", "shape"}: [T,B,n] / [B,n]
            "names": [state and output names, in the kernel's order]}
  }

Inputs are laid out as in bench/workloads.ts: x [T,B,D], dy [T,B,H] time-major, Wx [D,G·H] and Wh [H,G·H]
("x times W", gates side by side in PyTorch order: GRU r|z|n, LSTM i|f|g|o), bx and bh [G·H]. They go into
torch.nn.GRU / torch.nn.LSTM (batch_first=False, one layer) as weight_ih_l0 = Wx.T, weight_hh_l0 = Wh.T,
bias_ih_l0 = bx, bias_hh_l0 = bh. The loss is (output * dy).sum(), the initial state zero:
  fwd      the loss alone, under torch.no_grad()
  fwd+bwd  the loss and loss.backward() into x and every weight and bias

"zoo" (npm run bench -- --zoo, bench/zoo.ts): one of the custom cells written as PyTorch users write it, a
module with a Python loop over the steps (ZOO_PEERS below; nn.RNN for rnn), run eager and as
torch.jit.script(module). First the check, in float64 on the same parameters (cellforge's, converted to the
module's layout by bench/zoo-peers.ts), inputs and initial states: the loss sum_t sum_k out_k[t]*up_k[t] over
every state and output, and the norms of its gradient with respect to the parameters, x and the initial
states. Then the module in float32, timed: fwd (the loss under torch.no_grad()) and fwd+bwd (the loss and
loss.backward()), with the float32 loss and gradient norms of the timed runs.

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
import math
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
        (first <= budget["measureMs"] if warmups == 1 else warm_spent + last <= budget["warmupMs"])
        or (warmups < budget.get("minWarmups", 1) and last <= budget["slowRunMs"])
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


# ── the zoo's custom cells (bench/zoo.ts) ──────────────────────────────────
#
# Each is exactly the equations of dsl/<cell>.ts, in the layout of the code that cell cites. forward(x, state)
# takes x [T,B,D] and the initial states in the kernel's order, and returns every state and output at every
# step, [T,B,n], by name. The input products are hoisted out of the loop (one product over all T steps), as
# haste's *Script functions and sru's naive recurrence do.


def zoo_peers():
    """The modules, defined once torch is imported."""
    from typing import Dict, List

    import torch.nn.functional as F
    from torch import Tensor, nn

    def P(*shape):
        return nn.Parameter(torch.empty(*shape))

    class LayerNormLSTM(nn.Module):
        """dsl/lstm-layernorm.ts: haste's LayerNormLSTM (frameworks/pytorch/layer_norm_lstm.py, its
        LayerNormLSTMScript): gates [i|g|f|o]; v = LN(h@R; gamma[1]) + LN(x@K; gamma[0]) + bias,
        c' = f*c + i*g, h' = o*tanh(LN(c'; gamma_h, beta_h)); eps 1e-5."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.H = H
            self.kernel, self.recurrent_kernel = P(D, 4 * H), P(H, 4 * H)
            self.bias, self.gamma = P(4 * H), P(2, 4 * H)
            self.gamma_h, self.beta_h = P(H), P(H)

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            H = self.H
            h, c = state[0], state[1]
            Wx = F.layer_norm(x @ self.kernel, [4 * H], weight=self.gamma[0], eps=1e-5)
            hs: List[Tensor] = []
            cs: List[Tensor] = []
            for t in range(x.shape[0]):
                v = F.layer_norm(h @ self.recurrent_kernel, [4 * H], weight=self.gamma[1], eps=1e-5) + Wx[t] + self.bias
                i, g, f, o = v.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(F.layer_norm(c, [H], weight=self.gamma_h, bias=self.beta_h, eps=1e-5))
                hs.append(h)
                cs.append(c)
            return {"h": torch.stack(hs), "c": torch.stack(cs)}

    class LayerNormGRU(nn.Module):
        """dsl/gru-layernorm.ts: haste's LayerNormGRU (frameworks/pytorch/layer_norm_gru.py, LayerNormGRUScript):
        gates [z|r|g]; Wx = LN(x@K; gamma[0]) + bias, Rh = LN(h@R; gamma[1]) + recurrent_bias,
        g = tanh(Wx_g + r*Rh_g), h' = z*h + (1-z)*g; eps 1e-5."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.H = H
            self.kernel, self.recurrent_kernel = P(D, 3 * H), P(H, 3 * H)
            self.bias, self.recurrent_bias, self.gamma = P(3 * H), P(3 * H), P(2, 3 * H)

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            H = self.H
            h = state[0]
            Wx = F.layer_norm(x @ self.kernel, [3 * H], weight=self.gamma[0], eps=1e-5) + self.bias
            hs: List[Tensor] = []
            for t in range(x.shape[0]):
                Rh = F.layer_norm(h @ self.recurrent_kernel, [3 * H], weight=self.gamma[1], eps=1e-5) + self.recurrent_bias
                xz, xr, xg = Wx[t].chunk(3, 1)
                hz, hr, hg = Rh.chunk(3, 1)
                z = torch.sigmoid(xz + hz)
                r = torch.sigmoid(xr + hr)
                g = torch.tanh(xg + r * hg)
                h = z * h + (1 - z) * g
                hs.append(h)
            return {"h": torch.stack(hs)}

    class MGU(nn.Module):
        """dsl/mgu.ts: Zhou et al. 2016; f = sigmoid(Wf x + Uf h + bf), h~ = tanh(Wh x + Uh (f*h) + bh),
        h' = (1-f)*h + f*h~. x2h holds [Wf; Wh] and [bf; bh]."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.x2h = nn.Linear(D, 2 * H)
            self.Uf = nn.Linear(H, H, bias=False)
            self.Uh = nn.Linear(H, H, bias=False)

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            h = state[0]
            xf, xh = self.x2h(x).chunk(2, 2)
            hs: List[Tensor] = []
            for t in range(x.shape[0]):
                f = torch.sigmoid(xf[t] + self.Uf(h))
                hh = torch.tanh(xh[t] + self.Uh(f * h))
                h = (1 - f) * h + f * hh
                hs.append(h)
            return {"h": torch.stack(hs)}

    class SRU(nn.Module):
        """dsl/sru.ts: asappresearch/sru's SRUCell (D == H, no projection, highway_bias 0, rescale=True so
        scale_x = sqrt(3), use_tanh=False), its elementwise_recurrence_naive: U = x @ weight viewed [T,B,H,3]
        (column 3j+m: m = 0 x~, 1 forget, 2 reset); weight_c = [v_f; v_r], bias = [b_f; b_r]."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.H = H
            self.weight, self.weight_c, self.bias = P(D, 3 * H), P(2 * H), P(2 * H)
            self.scale_x = math.sqrt(1 + 2 * math.exp(0.0))

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            H = self.H
            c = state[0]
            U = (x @ self.weight).view(x.shape[0], x.shape[1], H, 3)
            v_f, v_r = self.weight_c.view(2, H)[0], self.weight_c.view(2, H)[1]
            b_f, b_r = self.bias.view(2, H)[0], self.bias.view(2, H)[1]
            hs: List[Tensor] = []
            cs: List[Tensor] = []
            for t in range(x.shape[0]):
                u = U[t]
                f = torch.sigmoid(u[:, :, 1] + v_f * c + b_f)
                r = torch.sigmoid(u[:, :, 2] + v_r * c + b_r)
                c = f * c + (1 - f) * u[:, :, 0]
                hs.append(r * c + (1 - r) * (x[t] * self.scale_x))
                cs.append(c)
            return {"c": torch.stack(cs), "h": torch.stack(hs)}

    class IndRNN(nn.Module):
        """dsl/indrnn-relu.ts: haste's IndRNN (frameworks/pytorch/indrnn.py) with ReLU:
        h' = relu(x @ kernel + recurrent_scale * h + bias)."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.kernel, self.recurrent_scale, self.bias = P(D, H), P(H), P(H)

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            h = state[0]
            Wx = x @ self.kernel + self.bias
            hs: List[Tensor] = []
            for t in range(x.shape[0]):
                h = torch.relu(Wx[t] + self.recurrent_scale * h)
                hs.append(h)
            return {"h": torch.stack(hs)}

    class RNN(nn.Module):
        """dsl/rnn.ts: torch.nn.RNN (tanh, two biases, one layer, batch_first=False), PyTorch's own loop."""

        def __init__(self, D: int, H: int):
            super().__init__()
            self.rnn = nn.RNN(D, H, nonlinearity="tanh")

        def forward(self, x: Tensor, state: List[Tensor]) -> Dict[str, Tensor]:
            out, _ = self.rnn(x, state[0].unsqueeze(0))
            return {"h": out}

    return {
        "lstm-layernorm": LayerNormLSTM,
        "gru-layernorm": LayerNormGRU,
        "mgu": MGU,
        "sru": SRU,
        "indrnn-relu": IndRNN,
        "rnn": RNN,
    }


def run_zoo(req, budget, cutoff_ms):
    """The check in float64, then fwd and fwd+bwd timed in float32, for each peer asked (eager, torchscript)."""
    cell = req["cell"]
    sizes = {k: int(v) for k, v in req["sizes"].items()}
    D, H = sizes.get("D", sizes["H"]), sizes["H"]  # sru has H alone (D == H)
    peers = zoo_peers()
    if cell not in peers:
        raise ValueError(f"no PyTorch peer for {cell} (peers: {', '.join(peers)})")
    names = req["names"]

    def load(path, shape):
        a = numpy.fromfile(path, dtype="<f8")
        if a.size != numpy.prod(shape):
            raise ValueError(f"{a.size} numbers in {path}, expected {shape}")
        return torch.from_numpy(a.reshape(shape).copy())

    params = {k: load(v["file"], v["shape"]) for k, v in req["params"].items()}
    x64 = load(req["x"]["file"], req["x"]["shape"])
    init64 = [load(v["file"], v["shape"]) for v in req["initial"].values()]  # in the kernel's order
    up64 = {k: load(v["file"], v["shape"]) for k, v in req["upstream"].items()}
    if sorted(up64) != sorted(names):
        raise ValueError(f"upstream for {sorted(up64)}, names {names}")

    def build(kind, dtype):
        m = peers[cell](D, H).to(dtype)  # first: load_state_dict copies into the parameters' own dtype
        # strict: a name or shape the conversion got wrong is an error here, not a silent mismatch
        m.load_state_dict({k: v.to(dtype) for k, v in params.items()}, strict=True)
        return torch.jit.script(m) if kind == "torchscript" else m

    def run(m, x, init, up):
        """loss, and the norms of its gradient w.r.t. the parameters, x and the initial states"""
        for p in m.parameters():
            p.grad = None
        xg = x.clone().requires_grad_(True)
        ig = [s.clone().requires_grad_(True) for s in init]
        outs = m(xg, ig)
        if sorted(outs) != sorted(names):
            raise RuntimeError(f"{cell} peer returns {sorted(outs)}, the kernel has {names}")
        loss = sum((outs[k] * up[k]).sum() for k in names)
        loss.backward()
        norm = lambda gs: math.sqrt(sum(float((g.double() ** 2).sum()) for g in gs))
        missing = [n for n, p in m.named_parameters() if p.grad is None]
        if missing:
            raise RuntimeError(f"no gradient for {', '.join(missing)}")
        return {
            "loss": float(loss),
            "gradParams": norm([p.grad for p in m.parameters()]),
            "gradX": norm([xg.grad]),
            "gradInitial": norm([s.grad for s in ig]),
        }

    out = {}
    for kind in req.get("peers", ["eager", "torchscript"]):
        m64 = build(kind, torch.float64)
        check = run(m64, x64, init64, up64)
        m = build(kind, torch.float32)
        x, init = x64.float(), [s.float() for s in init64]
        up = {k: v.float() for k, v in up64.items()}
        xg = x.clone().requires_grad_(True)

        def forward_backward():
            for p in m.parameters():
                p.grad = None
            xg.grad = None
            outs = m(xg, init)
            loss = sum((outs[k] * up[k]).sum() for k in names)
            loss.backward()

        def forward():
            with torch.no_grad():
                outs = m(x, init)
                float(sum((outs[k] * up[k]).sum() for k in names))

        # TorchScript's profiling executor specialises and fuses a graph over its first calls (seconds for
        # the layer-norm cells), which a training loop pays once: the zoo's budget asks for minWarmups
        r = {"check": check, "forwardBackward": measure(forward_backward, budget)}
        t = measure(forward, budget, cutoff_ms)
        if "abandonedAfterMs" in t:
            r["forwardNote"] = f"not measured: its first call took {t['abandonedAfterMs'] / 1000:.1f} s"
        else:
            r["forward"] = t
        r["f32"] = run(m, x, init, up)
        out[kind] = r
    return out


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
    need_torch = "rnn" in request or "zoo" in request or request.get("needTorch", False)
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
    if "zoo" in request:
        out["zoo"] = run_zoo(request["zoo"], budget, cutoff)
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

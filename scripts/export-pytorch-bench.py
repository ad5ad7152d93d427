#!/usr/bin/python3
"""Times modules written by `cellforge export --target pytorch` against hand-written eager PyTorch (not a test).

Run through scripts/export-pytorch-bench.ts, which exports the cells first:
    node --conditions=cellforge-source --import tsx scripts/export-pytorch-bench.ts
or by hand:  /usr/bin/python3 scripts/export-pytorch-bench.py <dir with lstm_layernorm.py and gru.py>

float32, CPU, one thread (set before torch loads its BLAS), B=32 D=128 H=128 T=50. Each contender is one
forward and backward of loss = (output * dy).sum() from a zero initial state into the input and every
parameter; median of the runs after five warm-ups, the contenders taking turns run by run. Contenders:
  exported        the exported nn.Module (its autograd.Function: the loops in Python, the derived backward)
  exported+jit    the same after script_loops() (both loops compiled with torch.jit.script)
  hand autograd   the same equations written by hand as a Python loop of torch ops, differentiated by autograd
                  (the input product x @ K' for every step at once, as the exported module does, split with
                  unbind: indexing it per step costs a [T, B, 4H] of zeros per step in autograd's backward)
  nn.GRU          torch's own layer, for gru
Before timing, each contender's output is compared with the exported module's (max abs difference printed).
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "GOTO_NUM_THREADS"):
    os.environ[var] = "1"

import importlib.util
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
B, D, H, T = 32, 128, 128, 50
RUNS = int(os.environ.get("RUNS", "20"))
# TorchScript's profiling executor optimises a function after its first runs
WARMUPS = 5


def blas():
    libs = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "blas" in p and p not in libs:
                libs.append(p)
    return libs


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def layer_norm(v, eps=1e-5):
    m = v.mean(-1, keepdim=True)
    var = ((v - m) ** 2).mean(-1, keepdim=True)
    return (v - m) / torch.sqrt(var + eps)


def hand_lstm_layernorm(x, K, R, gx, gr, bi, bg, bf, bo, gamma_h, beta_h):
    # dsl/lstm-layernorm.ts written by hand
    h = x.new_zeros(B, H)
    c = x.new_zeros(B, H)
    hs = []
    for a in (x @ K.t()).unbind(0):  # unbind, not a_all[t]: autograd's backward of indexing adds a [T, B, 4H] of zeros per step
        na = layer_norm(a)
        nu = layer_norm(h @ R.t())
        v = gr * nu + gx * na
        i = torch.sigmoid(v[:, :H] + bi)
        g = torch.tanh(v[:, H:2 * H] + bg)
        f = torch.sigmoid(v[:, 2 * H:3 * H] + bf)
        o = torch.sigmoid(v[:, 3 * H:] + bo)
        c = f * c + i * g
        h = o * torch.tanh(gamma_h * layer_norm(c) + beta_h)
        hs.append(h)
    return torch.stack(hs)


def hand_gru(x, w_ih, w_hh, b_ih, b_hh):
    # dsl/gru.ts (nn.GRU's equations) written by hand
    h = x.new_zeros(B, H)
    hs = []
    for gi in (x @ w_ih.t() + b_ih).unbind(0):
        gh = h @ w_hh.t() + b_hh
        r = torch.sigmoid(gi[:, :H] + gh[:, :H])
        z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = torch.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs.append(h)
    return torch.stack(hs)


def timed(contenders, x, dy):
    """Median ms of each (fn, params) contender; the runs go round-robin, so a busy machine slows each alike."""
    def once(fn, params):
        for p in params:
            p.grad = None
        x.grad = None
        t0 = time.perf_counter()
        (fn() * dy).sum().backward()
        return (time.perf_counter() - t0) * 1e3
    for fn, params in contenders:
        for _ in range(WARMUPS):
            once(fn, params)
    samples = [[] for _ in contenders]
    for _ in range(RUNS):
        for k, (fn, params) in enumerate(contenders):
            samples[k].append(once(fn, params))
    return [statistics.median(s) for s in samples]


def main():
    folder = sys.argv[1]
    torch.manual_seed(0)
    x = torch.randn(T, B, D, requires_grad=True)
    dy = torch.randn(T, B, H)
    print(f"torch {torch.__version__}, float32, one thread, B={B} D={D} H={H} T={T}, fwd+bwd median of {RUNS} after {WARMUPS} warm-ups")
    print(f"BLAS: {', '.join(blas())}")

    ln = load(os.path.join(folder, "lstm_layernorm.py"), "export_lstm_layernorm")
    ln_jit = load(os.path.join(folder, "lstm_layernorm.py"), "export_lstm_layernorm_jit")
    ln_jit.script_loops()
    m = ln.LstmLayernorm(D, H)
    m_jit = ln_jit.LstmLayernorm(D, H)
    m_jit.load_state_dict(m.state_dict())
    ps, ps_jit = list(m.parameters()), list(m_jit.parameters())
    ref = m(x)[0].detach()
    hand = lambda: hand_lstm_layernorm(x, *ps)
    print("lstm-layernorm:")
    print(f"  hand autograd output vs exported: max abs diff {float((hand().detach() - ref).abs().max()):.1e}")
    t_exp, t_jit, t_hand = timed([(lambda: m(x)[0], ps), (lambda: m_jit(x)[0], ps_jit), (hand, ps)], x, dy)
    print(f"  exported        {t_exp:8.1f} ms")
    print(f"  exported+jit    {t_jit:8.1f} ms")
    print(f"  hand autograd   {t_hand:8.1f} ms")
    print(f"  ratio hand / exported: {t_hand / t_exp:.2f}x   hand / exported+jit: {t_hand / t_jit:.2f}x")

    gr = load(os.path.join(folder, "gru.py"), "export_gru")
    gr_jit = load(os.path.join(folder, "gru.py"), "export_gru_jit")
    gr_jit.script_loops()
    g = gr.Gru(D, H)
    g_jit = gr_jit.Gru(D, H)
    g_jit.load_state_dict(g.state_dict())
    ps, ps_jit = list(g.parameters()), list(g_jit.parameters())
    ref = g(x)[0].detach()
    nn_gru = torch.nn.GRU(D, H)
    nn_gru.load_state_dict(g.state_dict())  # the exported module's parameters are nn.GRU's, by name
    nps = list(nn_gru.parameters())
    hand = lambda: hand_gru(x, *ps)
    print("gru:")
    print(f"  hand autograd output vs exported: max abs diff {float((hand().detach() - ref).abs().max()):.1e}")
    print(f"  nn.GRU output vs exported:        max abs diff {float((nn_gru(x)[0].detach() - ref).abs().max()):.1e}")
    t_exp, t_jit, t_hand, t_nn = timed([(lambda: g(x)[0], ps), (lambda: g_jit(x)[0], ps_jit), (hand, ps), (lambda: nn_gru(x)[0], nps)], x, dy)
    print(f"  exported        {t_exp:8.1f} ms")
    print(f"  exported+jit    {t_jit:8.1f} ms")
    print(f"  hand autograd   {t_hand:8.1f} ms")
    print(f"  nn.GRU          {t_nn:8.1f} ms")
    print(f"  ratio hand / exported: {t_hand / t_exp:.2f}x   nn.GRU / exported: {t_nn / t_exp:.2f}x")


main()

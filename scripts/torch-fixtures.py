#!/usr/bin/python3
"""PyTorch reference fixtures for cellforge's PyTorch-layout cells (dsl/rnn.ts, dsl/gru.ts, dsl/lstm.ts).

Writes test/fixtures/torch/{rnn,gru,lstm,grucell,lstmcell}.json: for nn.RNN (tanh), nn.GRU, nn.LSTM,
nn.GRUCell and nn.LSTMCell, a few cases (B = 1 and B > 1, D != H, T = 1 and T > 1) with random
weights, inputs, initial states and upstream gradients, and in float64 the outputs and every gradient
by torch.autograd. test/torch.test.ts loads them through src/interop's converters; the test suite
needs no Python.

Needs only Debian's python3-torch and python3-numpy:
    apt-get install -y python3-torch python3-numpy
    /usr/bin/python3 scripts/torch-fixtures.py          # from the repository root

Output is deterministic for a given torch build (seeded; no timestamps, no paths).

Each file: {"generator", "torch", "numpy", "module", "dtype", "init", "loss", "cases": [...]}.
A case holds sizes (D, H, B, T), its seed, "state_dict" (torch's own names and shapes, nested
lists), "inputs" (x [T][B][D] and the initial states [B][H]), "upstream", "outputs" and "grads"
(every state_dict entry and every input, under the same names). The loss is the sum over every
output of <upstream, output>:
  nn.RNN / nn.GRU:  loss = <dy, y> + <dh_n, h_n>               y = output [T][B][H], h_n = [B][H]
  nn.LSTM:          loss = <dy, y> + <dh_n, h_n> + <dc_n, c_n>
  the cells, called once a step for T steps (h_t = cell(x_t, h_{t-1})):
  nn.GRUCell:       loss = sum_t <dh[t], h_t>                    outputs h [T][B][H]
  nn.LSTMCell:      loss = sum_t <dh[t], h_t> + <dc[t], c_t>     outputs h, c [T][B][H]
"""
import json
import os
import subprocess
import sys

import numpy
import torch

# (D, H, B, T): B = 1 and B > 1, T = 1 and T > 1, D != H throughout
SIZES = [(3, 4, 1, 1), (5, 3, 3, 4), (2, 5, 1, 5), (6, 4, 4, 1), (4, 6, 2, 3)]
INIT_SCALE = 2.0  # weights U(-a, a), a = INIT_SCALE / sqrt(H): twice PyTorch's default, so gates leave the linear region

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "torch")


def debian_package():
    """The Debian package torch came from (torch.__version__ of Debian's build reads like "1.13.0a0")."""
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"], capture_output=True, text=True, check=True).stdout
        return f"python3-torch {v} (Debian)"
    except (OSError, subprocess.CalledProcessError):
        return None


def nested(t):
    return t.detach().cpu().numpy().tolist()


def randomize(module, H, gen):
    a = INIT_SCALE / H ** 0.5
    with torch.no_grad():
        for p in module.parameters():
            p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) * 2 - 1) * a)


def module_case(kind, D, H, B, T, seed):
    """nn.RNN / nn.GRU / nn.LSTM, one layer, time-major (batch_first=False)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    m = {"rnn": lambda: torch.nn.RNN(D, H, nonlinearity="tanh"), "gru": lambda: torch.nn.GRU(D, H), "lstm": lambda: torch.nn.LSTM(D, H)}[kind]()
    m = m.double()
    randomize(m, H, gen)
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)
    x = randn(T, B, D).requires_grad_()
    h0 = randn(1, B, H).requires_grad_()
    c0 = randn(1, B, H).requires_grad_() if kind == "lstm" else None
    dy, dh_n = randn(T, B, H), randn(1, B, H)
    dc_n = randn(1, B, H) if kind == "lstm" else None
    if kind == "lstm":
        y, (h_n, c_n) = m(x, (h0, c0))
        loss = (dy * y).sum() + (dh_n * h_n).sum() + (dc_n * c_n).sum()
    else:
        y, h_n = m(x, h0)
        loss = (dy * y).sum() + (dh_n * h_n).sum()
    names = [n for n, _ in m.named_parameters()]
    wrt = [p for _, p in m.named_parameters()] + [x, h0] + ([c0] if kind == "lstm" else [])
    grads = torch.autograd.grad(loss, wrt)
    g = dict(zip(names + ["x", "h0"] + (["c0"] if kind == "lstm" else []), grads))
    sq = lambda t: nested(t[0])  # (1, B, H) -> [B][H]
    case = {
        "name": f"D{D}-H{H}-B{B}-T{T}", "D": D, "H": H, "B": B, "T": T, "seed": seed,
        "state_dict": {k: nested(v) for k, v in m.state_dict().items()},
        "inputs": {"x": nested(x), "h0": sq(h0), **({"c0": sq(c0)} if kind == "lstm" else {})},
        "upstream": {"dy": nested(dy), "dh_n": sq(dh_n), **({"dc_n": sq(dc_n)} if kind == "lstm" else {})},
        "outputs": {"y": nested(y), "h_n": sq(h_n), **({"c_n": sq(c_n)} if kind == "lstm" else {})},
        "grads": {k: (sq(v) if k in ("h0", "c0") else nested(v)) for k, v in g.items()},
        "loss": loss.item(),
    }
    return case


def cell_case(kind, D, H, B, T, seed):
    """nn.GRUCell / nn.LSTMCell, called once a step for T steps."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    m = (torch.nn.GRUCell(D, H) if kind == "grucell" else torch.nn.LSTMCell(D, H)).double()
    randomize(m, H, gen)
    lstm = kind == "lstmcell"
    randn = lambda *shape: torch.randn(*shape, generator=gen, dtype=torch.float64)
    x = randn(T, B, D).requires_grad_()
    h0 = randn(B, H).requires_grad_()
    c0 = randn(B, H).requires_grad_() if lstm else None
    dh = randn(T, B, H)
    dc = randn(T, B, H) if lstm else None
    hs, cs = [], []
    h, c = h0, c0
    for t in range(T):
        if lstm:
            h, c = m(x[t], (h, c))
            cs.append(c)
        else:
            h = m(x[t], h)
        hs.append(h)
    hs = torch.stack(hs)
    loss = (dh * hs).sum()
    if lstm:
        cs = torch.stack(cs)
        loss = loss + (dc * cs).sum()
    names = [n for n, _ in m.named_parameters()]
    wrt = [p for _, p in m.named_parameters()] + [x, h0] + ([c0] if lstm else [])
    grads = torch.autograd.grad(loss, wrt)
    g = dict(zip(names + ["x", "h0"] + (["c0"] if lstm else []), grads))
    return {
        "name": f"D{D}-H{H}-B{B}-T{T}", "D": D, "H": H, "B": B, "T": T, "seed": seed,
        "state_dict": {k: nested(v) for k, v in m.state_dict().items()},
        "inputs": {"x": nested(x), "h0": nested(h0), **({"c0": nested(c0)} if lstm else {})},
        "upstream": {"dh": nested(dh), **({"dc": nested(dc)} if lstm else {})},
        "outputs": {"h": nested(hs), **({"c": nested(cs)} if lstm else {})},
        "grads": {k: nested(v) for k, v in g.items()},
        "loss": loss.item(),
    }


MODULES = {
    "rnn": ("nn.RNN(nonlinearity='tanh')", module_case, "loss = <dy, y> + <dh_n, h_n>"),
    "gru": ("nn.GRU", module_case, "loss = <dy, y> + <dh_n, h_n>"),
    "lstm": ("nn.LSTM", module_case, "loss = <dy, y> + <dh_n, h_n> + <dc_n, c_n>"),
    "grucell": ("nn.GRUCell", cell_case, "loss = sum_t <dh[t], h_t> (the cell called once a step)"),
    "lstmcell": ("nn.LSTMCell", cell_case, "loss = sum_t <dh[t], h_t> + <dc[t], c_t> (the cell called once a step)"),
}


def main():
    torch.set_default_dtype(torch.float64)
    os.makedirs(OUT, exist_ok=True)
    for kind, (module, make, loss) in MODULES.items():
        cases = [make(kind, D, H, B, T, seed=1000 * (i + 1) + len(kind)) for i, (D, H, B, T) in enumerate(SIZES)]
        head = {
            "generator": "scripts/torch-fixtures.py (run: /usr/bin/python3 scripts/torch-fixtures.py)",
            "torch": torch.__version__,
            **({"torch_package": debian_package()} if debian_package() else {}),
            "numpy": numpy.__version__,
            "module": f"torch.{module}",
            "dtype": "float64",
            "init": f"every parameter U(-a, a), a = {INIT_SCALE}/sqrt(H); inputs, initial states and upstream N(0, 1)",
            "loss": loss,
        }
        # one line per header field and per case: small diffs, still readable
        lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
        body = ",\n".join("  " + json.dumps(c, separators=(",", ":")) for c in cases)
        text = "{\n" + "\n".join(lines) + '\n "cases": [\n' + body + "\n ]\n}\n"
        json.loads(text)  # well-formed
        path = os.path.join(OUT, f"{kind}.json")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(path)}: {len(cases)} cases, {len(text) / 1024:.1f} KB (torch {torch.__version__})")


if __name__ == "__main__":
    sys.exit(main())

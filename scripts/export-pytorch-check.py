#!/usr/bin/python3
"""Runs modules written by `cellforge export --target pytorch` on cases, for test/export-pytorch.test.ts.

Reads one JSON request on stdin, writes one JSON reply on stdout (nothing else goes to stdout):
  {"cases": [{"file": "gru.py", "fn": "GruFunction", "module": "Gru", "sizes": [3, 4], "free": [3, 4],
              "B": 2, "T": 3,
              "inputs": [[flat], ...], "inputShapes": [[T, B, n], ...],
              "initial": [[flat], ...], "initialShapes": [[B, n], ...],
              "params": [[flat], ...], "paramShapes": [[...], ...],
              "upstream": [[flat], ...], "rootShapes": [[T, B, n], ...],
              "jit": false, "gradcheck": false,
              "moduleCheck": {"stateDict": {name: [[flat], shape]}, "upstream": [flat]} or null}]}
Reply: {"ok": true, "torch": version, "blas": [...], "results": [{"outputs": [[flat]...], "grads": {"inputs", "initial",
"params"}, "jit": null|{"outputs", "grads"}, "gradcheck": null|bool, "module": null|{...}, "error": null|str}]}
Everything runs in float64 on the CPU, one thread.
"""
import os

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = "1"

import importlib.util
import json
import sys
import traceback


def blas_libraries():
    libs = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if ("blas" in p or "lapack" in p) and p not in libs:
                    libs.append(p)
    except OSError:
        pass
    return libs


def main():
    req = json.load(sys.stdin)
    try:
        import torch
    except ImportError as e:
        print(json.dumps({"ok": False, "missing": "torch", "error": str(e)}))
        return
    torch.set_num_threads(1)
    f64 = torch.float64

    def tensor(flat, shape):
        return torch.tensor(flat, dtype=f64).reshape(shape)

    def flat(t):
        return t.detach().reshape(-1).tolist()

    def load(path, name):
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    def run_function(mod, c):
        Fn = getattr(mod, c["fn"])
        xs = [tensor(v, s).requires_grad_() for v, s in zip(c["inputs"], c["inputShapes"])]
        h0 = [tensor(v, s).requires_grad_() for v, s in zip(c["initial"], c["initialShapes"])]
        ps = [tensor(v, s).requires_grad_() for v, s in zip(c["params"], c["paramShapes"])]
        outs = Fn.apply(tuple(c["sizes"]), *xs, *h0, *ps)
        if not isinstance(outs, tuple):
            outs = (outs,)
        loss = sum((o * tensor(u, s)).sum() for o, u, s in zip(outs, c["upstream"], c["rootShapes"]))
        loss.backward()
        return {
            "outputs": [flat(o) for o in outs],
            "grads": {"inputs": [flat(x.grad) for x in xs], "initial": [flat(h.grad) for h in h0], "params": [flat(p.grad) for p in ps]},
        }

    def gradcheck(mod, c):
        Fn = getattr(mod, c["fn"])
        xs = [tensor(v, s).requires_grad_() for v, s in zip(c["inputs"], c["inputShapes"])]
        h0 = [tensor(v, s).requires_grad_() for v, s in zip(c["initial"], c["initialShapes"])]
        ps = [tensor(v, s).requires_grad_() for v, s in zip(c["params"], c["paramShapes"])]
        sizes = tuple(c["sizes"])
        return bool(torch.autograd.gradcheck(lambda *a: Fn.apply(sizes, *a), (*xs, *h0, *ps), eps=1e-6, atol=1e-7, rtol=1e-5, raise_exception=False))

    def run_module(mod, c):
        m = c["moduleCheck"]
        layer = getattr(mod, c["module"])(*c["free"], dtype=f64)
        names = [n for n, _ in layer.named_parameters()]
        if m.get("stateDict"):
            # the weights as `cellforge convert --to pytorch` writes them
            layer.load_state_dict({k: tensor(v, s) for k, (v, s) in m["stateDict"].items()})
        else:
            with torch.no_grad():
                for p, v, s in zip(layer.cell_parameters(), c["params"], c["paramShapes"]):
                    p.copy_(tensor(v, s))
        x = [tensor(v, s).requires_grad_() for v, s in zip(c["inputs"], c["inputShapes"])]
        h0 = [tensor(v, s).unsqueeze(0).requires_grad_() for v, s in zip(c["initial"], c["initialShapes"])]
        out, final = layer(*x, state=h0[0] if len(h0) == 1 else tuple(h0))
        loss = (out * tensor(m["upstream"], out.shape)).sum()
        loss.backward()
        # batch_first gives the same numbers
        layer_bf = getattr(mod, c["module"])(*c["free"], batch_first=True, dtype=f64)
        layer_bf.load_state_dict(layer.state_dict())
        out_bf, _ = layer_bf(*[v.detach().transpose(0, 1) for v in x], state=h0[0].detach() if len(h0) == 1 else tuple(h.detach() for h in h0))
        # float32, from the same module file: nothing in it names a dtype
        layer32 = getattr(mod, c["module"])(*c["free"])
        layer32.load_state_dict({k: v.float() for k, v in layer.state_dict().items()})
        h32 = [h.detach().float() for h in h0]
        out32, _ = layer32(*[v.detach().float() for v in x], state=h32[0] if len(h32) == 1 else tuple(h32))
        return {
            "float32": str(out32.dtype),
            "float32Diff": float(((out32.double() - out.detach()).abs() / out.detach().abs().clamp(min=1)).max()),
            "names": names,
            "output": flat(out),
            "final": [flat(f) for f in (final if isinstance(final, tuple) else (final,))],
            "grads": [flat(p.grad) for _, p in layer.named_parameters()],
            "dinputs": [flat(v.grad) for v in x],
            "dinitial": [flat(h.grad) for h in h0],
            "batchFirstDiff": float((out_bf.transpose(0, 1) - out.detach()).abs().max()),
            "defaultState": list(layer(*[v.detach() for v in x])[0].shape),
        }

    results = []
    for i, c in enumerate(req["cases"]):
        r = {"error": None, "jit": None, "gradcheck": None, "module": None}
        try:
            mod = load(c["file"], "cellforge_export_%d" % i)
            r.update(run_function(mod, c))
            if c.get("gradcheck"):
                r["gradcheck"] = gradcheck(mod, c)
            if c.get("moduleCheck"):
                r["module"] = run_module(mod, c)
            if c.get("jit"):
                mod.script_loops()
                r["jit"] = run_function(mod, c)
        except Exception:
            r["error"] = traceback.format_exc()
        results.append(r)
    print(json.dumps({"ok": True, "torch": torch.__version__, "blas": blas_libraries(), "results": results}))


main()

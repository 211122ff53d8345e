"""The Markdown report of a run (also re-rendered from its raw JSON with ``--from-json``)."""
import statistics

from . import BATCH, FRAMEWORKS, OTHER_LOAD_WARN, PEAK_FRACTION, PREDICT_BATCH
from .flops import model_flops, row_flops


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def merge_layer_runs(runs):
    """One per-layer result from several runs of the same breakdown: per layer, the median over
    the runs of each timing (each run's own median over its repetitions); None if none ran."""
    ok = [r for r in runs if r and r.get("layers")]
    if not ok:
        return None
    merged = []
    for k, layer in enumerate(ok[0]["layers"]):
        row = dict(layer)
        for key in ("fwd", "bwd", "alone_fwd", "alone_bwd"):
            vals = [r["layers"][k][key] for r in ok if key in r["layers"][k]]
            if vals:
                row[key] = float(med(vals))
        merged.append(row)
    return {"layers": merged, "runs": len(ok)}


def epoch_stats(r):
    """(median epoch seconds, first epoch seconds): the median is over the epochs after the
    first when there are at least two (steady state), else the only epoch."""
    s = [e["seconds"] for e in r.get("epochs", [])]
    if not s:
        return None, None
    return (statistics.median(s[1:]) if len(s) > 1 else s[0]), s[0]


def fmt(x, spec=".2f", none="-"):
    return none if x is None else format(x, spec)


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def aggregate(results, fw, m):
    """Medians over the repeats of one framework x model, or None when every run failed."""
    rs = [r for r in results[fw][m] if r]
    if not rs:
        return None
    es = [epoch_stats(r) for r in rs]
    return {
        "epoch": med([e[0] for e in es]), "first": med([e[1] for e in es]),
        "acc": med([r.get("test_acc") for r in rs]),
        "pred": med([r.get("predict_img_s") for r in rs]),
        "rss": med([r["peak_rss_mb"] for r in rs]),
        "rss_base": med([r.get("rss_base_mb") for r in rs]),
        "train_acc": med([r["epochs"][-1].get("accuracy") for r in rs if r.get("epochs")]),
    }


def ratio(results, other, m, key):
    """Median over repeats of pycnn's number / other's, each pair from the same repeat."""
    out = []
    for rp, ro in zip(results["pycnn"][m], results[other][m]):
        if not rp or not ro:
            continue
        if key == "epoch":
            a, b = epoch_stats(rp)[0], epoch_stats(ro)[0]
        elif key == "first":
            a, b = epoch_stats(rp)[1], epoch_stats(ro)[1]
        elif key == "pred":           # time per image ratio = inverse throughput ratio
            a, b = ro.get("predict_img_s"), rp.get("predict_img_s")
        else:
            a, b = rp.get(key), ro.get(key)
        if a and b:
            out.append(a / b)
    return med(out)


def header_section(info, results, fws, models):
    L = ["# pycnn benchmark results", "",
         f"Command: `{info['command']}` ({info['started']}, {info['elapsed_s']:.0f} s). "
         "See `benchmarks/README.md` for what each number means.", ""]
    vers = {}
    for fw in fws:
        for m in models:
            for r in results[fw][m]:
                if r:
                    vers[fw] = r.get("version")
                    if fw == "pycnn":
                        vers["pycnn ISA"] = r.get("isa")
                    if fw == "keras":
                        vers["keras backend"] = (f"{r.get('backend')} "
                                                 f"(torch {r.get('torch_version')})")
    L.append(f"- Machine: {info['cpu']}, {info['cores']} cores "
             f"(flags: {', '.join(info['cpu_flags'])}); pycnn ISA: "
             f"`{vers.get('pycnn ISA', '-')}`")
    L.append(f"- Versions: Python {info['python']}, NumPy {info['numpy']}, "
             + ", ".join(f"{k} {v}" for k, v in vers.items() if k != "pycnn ISA"))
    L.append(f"- Settings: {info['threads']} thread(s) for every framework, batch {BATCH}, "
             f"{info['epochs']} epoch(s) on {info['train_size']} training images, test on "
             f"10,000, predict at batch {PREDICT_BATCH}, seed {info['seed']}, "
             f"{info['repeats']} repeat(s)" + (" (--quick)" if info["quick"] else ""))
    L.append(f"- Data: {info['data']['source']}")
    for fw, why in info["skipped"].items():
        L.append(f"- {fw}: not run ({why})")
    loads = [(w, o) for w, o in info.get("other_load", []) if o is not None]
    if loads:
        worst = max(loads, key=lambda t: t[1])
        bad = [w for w, o in loads if o > OTHER_LOAD_WARN]
        line = (f"- Other processes on the machine used up to {worst[1]:.2f} cores during a "
                f"timed run (`{worst[0]}`)")
        if bad:
            line += (f": **{len(bad)} of {len(loads)} runs were disturbed** (more than "
                     f"{OTHER_LOAD_WARN} cores), their numbers are not reliable: "
                     + ", ".join(f"`{w}`" for w in bad))
        L.append(line)
    L.append("")
    return L


def peak_section(info, peak):
    L = ["## Peak single-precision FMA throughput (benchmarks/peak.c)", ""]
    if info["peak_rows"]:
        L.append(md_table(["ISA", "threads", "GFLOP/s", "GFLOP/s per core"],
                          [[r["isa"], r["threads"], f"{r['gflops']:.1f}",
                            f"{r['gflops_per_core']:.1f}"] for r in info["peak_rows"]]))
        L.append("")
        L.append(f"Peak used below: **{fmt(peak, '.1f')} GFLOP/s** on {info['threads']} "
                 f"thread(s) (best ISA); 1 thread: {fmt(info['peak'].get(1), '.1f')} GFLOP/s.")
    else:
        L.append(f"not measured: {info['peak_error']}")
    return L + [""]


def results_section(results, A, fws, models):
    def cell(vals):
        return " / ".join(vals)

    hdr = ["framework", "epoch s (median)", "1st epoch s", "test acc", "predict img/s",
           "peak RSS MB", "base RSS MB"]
    rows = []
    for fw in fws:
        row = [fw]
        for key, spec in (("epoch", ".3f"), ("first", ".3f"), ("acc", ".4f"), ("pred", ".0f"),
                          ("rss", ".0f"), ("rss_base", ".0f")):
            row.append(cell([fmt(A[fw][m][key], spec) if A[fw][m] else "failed"
                             for m in models]))
        rows.append(row)
    if "pycnn" in fws:
        for other in fws:
            if other == "pycnn":
                continue
            row = [f"ratio pycnn/{other}"]
            for key in ("epoch", "first", None, "pred", "peak_rss_mb", None):
                row.append("" if key is None else
                           cell([fmt(ratio(results, other, m, key), ".2f") for m in models]))
            rows.append(row)
    return ["## Results (" + " / ".join(models) + " in each cell)", "", md_table(hdr, rows), "",
            "Epoch s: median over the epochs after the first (the only epoch when there is "
            "one). Ratios come from the same run (medians over repeats); for epoch and "
            "predict they are time ratios (predict: inverse throughput ratio), so < 1 means "
            "pycnn is faster; for RSS < 1 means pycnn uses less memory. Base RSS: after "
            "imports and data loading, before the model is built.", ""]


def efficiency_section(info, A, fws, models, peak):
    n = info["train_size"]
    rows = []
    for m in models:
        fwd1, train1 = model_flops(m)
        ef = train1 * n
        bound = ef / (PEAK_FRACTION * peak * 1e9) if peak else None
        row = [m, f"{fwd1 / 1e6:.2f}", f"{train1 / 1e6:.2f}", f"{ef / 1e9:.1f}",
               fmt(bound, ".3f")]
        for fw in fws:
            a = A[fw][m]
            if a and a["epoch"] and peak:
                g = ef / a["epoch"] / 1e9
                row.append(f"{a['epoch']:.3f} s = {g:.1f} GFLOP/s = {100 * g / peak:.1f} %")
            else:
                row.append("-")
        rows.append(row)
    return ["## Whole-epoch efficiency", "",
            md_table(["model", "fwd MFLOP/img", "train MFLOP/img",
                      f"GFLOP/epoch ({n} img)", f"epoch at {PEAK_FRACTION:.0%} of peak, s"]
                     + [f"{fw} (% of peak)" for fw in fws], rows), "",
            "FLOPs count conv/dense GEMM work only (forward, dW, dX; no dX for the first "
            "layer); activations, pooling, loss and optimizer are extra work not counted.", ""]


PYCNN_LAYER_NOTES = {
    "convnet": " (as fit runs them: a convolution and the max pooling it feeds are one fused "
               "call; the second convolution's forward runs Winograd F(2x2, 3x3), and its "
               "GFLOP/s count the direct method's FLOPs, an effective rate; the output layer's "
               "softmax runs in the loss)",
    "dense": " (as fit runs them: relu fused into the first layer, the output layer's softmax "
             "into the loss, so its forward stops at the logits and its backward starts from "
             "them)",
}


def layer_rows(model, fw, layers, peak):
    """The rows of one per-layer table and the (forward, backward, alone) totals."""
    def rate(fl, s):
        if not fl or not s:
            return "-", "-"
        v = fl / s / 1e9
        return f"{v:.1f}", (f"{100 * v / peak:.1f}" if peak else "-")

    rows = []
    tf = tb = 0.0
    ta = 0.0          # alone, summed (None when a layer has no alone time)
    first = True
    for i, l in enumerate(layers):
        f, b, first = row_flops(model, l.get("arch", [i]), first)
        tf += l["fwd"]
        tb += l["bwd"]
        gf, pf = rate(f, l["fwd"])
        gb, pb = rate(b, l["bwd"])
        _, pt = rate(f + b, l["fwd"] + l["bwd"])
        # alone: PyTorch's rows are timed that way only
        alone = (l["fwd"] + l["bwd"]) if fw == "torch" else \
            (l["alone_fwd"] + l["alone_bwd"]) if "alone_fwd" in l else None
        _, pa = rate(f + b, alone)
        ta = ta + alone if ta is not None and alone else None
        rows.append([l["name"], "x".join(str(s) for s in l["out_shape"][1:]),
                     f"{l['fwd'] * 1e3:.3f}", gf, pf, f"{l['bwd'] * 1e3:.3f}", gb, pb,
                     pt, fmt(alone * 1e3 if alone else None, ".3f"), pa])
    fwd1, train1 = model_flops(model, BATCH)
    rows.append(["**total**", "", f"{tf * 1e3:.3f}",
                 f"{fwd1 / tf / 1e9:.1f}" if tf else "-", "",
                 f"{tb * 1e3:.3f}",
                 f"{(train1 - fwd1) / tb / 1e9:.1f}" if tb else "-", "",
                 f"{100 * train1 / (tf + tb) / 1e9 / peak:.1f}" if tf + tb and peak
                 else "-", fmt(ta * 1e3 if ta else None, ".3f"),
                 f"{100 * train1 / ta / 1e9 / peak:.1f}" if ta and peak else "-"])
    return rows, tf + tb


def layers_section(info, A, model, by_fw, peak):
    L = [f"## {model.capitalize()} per layer (one batch of {BATCH}, "
         f"{info['threads']} thread(s), % of the {fmt(peak, '.0f')} GFLOP/s peak)", ""]
    for fw, lr in by_fw.items():
        if not lr:
            L += [f"{fw}: failed (see errors)", ""]
            continue
        rows, total = layer_rows(model, fw, lr["layers"], peak)
        runs_note = f" Medians of {lr['runs']} run(s)." if lr.get("runs") else ""
        L.append(f"**{fw}**" + (" (NCHW; ReLU timed with its layer)" if fw == "torch"
                                 else PYCNN_LAYER_NOTES.get(model, "")) + runs_note)
        L.append("")
        L.append(md_table(["layer", "output", "fwd ms", "fwd GFLOP/s", "fwd % peak",
                           "bwd ms", "bwd GFLOP/s", "bwd % peak", "fwd+bwd % peak",
                           "alone fwd+bwd ms", "alone % peak"], rows))
        L.append("")
        a = A.get(fw, {}).get(model)
        if a and a["epoch"]:
            steps = -(-info["train_size"] // BATCH)
            L.append(f"Layers' forward + backward: {total * 1e3:.2f} ms; one training "
                     f"step of the epoch above: {a['epoch'] / steps * 1e3:.2f} ms (epoch s / "
                     f"{steps} batches; it adds the loss, optimizer update, batch gather "
                     "and framework overhead).")
            L.append("")
    return L


def scaling_section(info, scaling, scaling_size):
    t = info["threads"]
    rows = []
    for fw, s in scaling.items():
        s1, sn = s.get(1), s.get(t)
        sp = s1 / sn if s1 and sn else None
        rows.append([fw, fmt(s1, ".3f"), fmt(sn, ".3f"), fmt(sp, ".2f"),
                     fmt(sp / t * 100 if sp else None, ".0f")])
    return [f"## Thread scaling (convnet, 1 epoch on {scaling_size} images, median of "
            f"{info['repeats']} run(s) per thread count, run in turn)", "",
            md_table(["framework", "1 thread s", f"{t} threads s", "speedup",
                      "parallel efficiency %"], rows), ""]


def course_section(course):
    """The course models' and VGG16's rows (course_models.py, vgg16_features.py)."""
    L = []
    models = (course.get("models") or {}).get("rows")
    if models:
        rows = [[r["model"], f"{r['samples']}, {r['batch']}", f"{r['pycnn_s']:.3f}",
                 fmt(r["torch_s"], ".3f"), fmt(r["ratio"], ".2f"),
                 f"{r['pycnn_gflops']:.1f} = {100 * r['peak_fraction']:.0f} %"]
                for r in models]
        L += ["## Course models (benchmarks/course_models.py)", "",
              md_table(["model", "samples, batch", "pycnn s/epoch", "PyTorch s/epoch",
                        "ratio pycnn/PyTorch", "pycnn GFLOP/s (% of peak)"], rows), "",
              "bn_aug: RandomRotation + RandomZoom + RandomTranslation leading a "
              "Dense-BatchNormalization-Dropout MLP; signs: practical 2's convnet; unet: a "
              "small U-Net (64x64). Medians of the timed epochs after a warm-up epoch; GFLOP/s "
              "count a training step as three forward passes.", ""]
    vgg = course.get("vgg16")
    if vgg and vgg.get("rows"):
        rows = [[r["framework"], f"{r['images_per_s']:.1f}", f"{r['gflops']:.1f}"]
                for r in vgg["rows"]]
        L += [f"## VGG16 feature extraction ({vgg['size']}x{vgg['size']}x3, batch "
              f"{vgg['batch']}, benchmarks/vgg16_features.py)", "",
              md_table(["framework", "images/s (median batch)", "GFLOP/s"], rows), ""]
    return L


def errors_section(errors):
    L = ["## Errors", ""]
    for what, tail in errors:
        L += [f"- `{what}`:", "", "```", tail, "```"]
    return L + [""]


def report(info, results, layer_res, scaling, args):
    fws = [fw for fw in FRAMEWORKS if fw in results]
    models = args.models
    peak = info["peak"].get(info["threads"])
    A = {fw: {m: aggregate(results, fw, m) for m in models} for fw in fws}
    L = header_section(info, results, fws, models)
    L += peak_section(info, peak)
    L += results_section(results, A, fws, models)
    L += efficiency_section(info, A, fws, models, peak)
    for model, by_fw in layer_res.items():
        L += layers_section(info, A, model, by_fw, peak)
    if scaling:
        L += scaling_section(info, scaling, args.scaling_size)
    L += course_section(info.get("course") or {})
    if info["errors"]:
        L += errors_section(info["errors"])
    return "\n".join(L).rstrip()

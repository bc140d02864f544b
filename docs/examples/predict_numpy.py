import json, zlib
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq

TICKS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}

def decode(col):
    """A numeric column as float64, as streamfit decodes it (a null becomes NaN)."""
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_duration(t):   # seconds
        return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False) / TICKS[t.unit]
    if pa.types.is_date32(t):                                  # days since the epoch
        return pc.cast(col, pa.int32()).to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_date64(t):
        return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False) / 86_400_000
    return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)

def text(x):
    """A categorical value as streamfit compares it: booleans `true`/`false`, numbers as text."""
    return str(x).lower() if isinstance(x, bool) else str(x)

def features(m, t):
    """The model's features of table `t`, (rows, features) float64, as training saw them."""
    f32 = lambda v: np.asarray(v, np.float32).astype(np.float64)
    missing = m.get("missing", {})
    fill = {f["column"]: f["value"] for f in missing.get("fill", [])}
    s = m.get("standardization")
    centre = {c["column"]: c["value"] for c in (s or {}).get("centre", [])}
    cat = m.get("categorical", {})
    out = {}
    for v in cat.get("encoding", {}).get("one_hot", []):        # one-hot columns
        c, names = v["column"], v["values"]
        for name in names + ["<other>", "<null>"]:
            out[f"{c}={name}"] = np.zeros(t.num_rows)
        for i, x in enumerate(t[c].to_pylist()):                # dictionaries as values
            if x is None:
                slot = "<null>" if v.get("null") else "<other>"
            else:
                slot = text(x) if text(x) in names else "<other>"
            out[f"{c}={slot}"][i] = 1.0
    n = cat.get("encoding", {}).get("hash", {}).get("buckets", 0)
    for b in range(n):                                          # the hashing trick
        out[f"hash_{b}"] = np.zeros(t.num_rows)
    for c in cat.get("columns", {}).get("named", []) if n else []:
        for i, x in enumerate(t[c].to_pylist()):
            value = "<null>" if x is None else text(x)
            out[f"hash_{zlib.crc32(f'{c}={value}'.encode()) % n}"][i] += 1.0
    for c in m["features"]:             # numeric columns (then their `COL_is_null` features)
        if c in out:
            continue
        v = decode(t[c])
        out[f"{c}_is_null"] = np.isnan(v).astype(np.float64)
        # fill, centre in f64, round to f32 as the decoder does
        out[c] = f32(np.where(np.isnan(v), fill.get(c, np.nan), v) - centre.get(c, 0.0))
    x = np.stack([out[name] for name in m["features"]], axis=1)
    if s is not None and m["version"] >= 6:                     # format 6: standardise in f64
        x = (x - f32(s["mean"])) / f32(s["std"])
    return x

def score(m, x):
    """The model's forward pass in float64: what `streamfit predict` writes."""
    if m["model"] in ("linear", "logistic"):
        layers = [(np.asarray(m["weights"], np.float32)[None, :], [m["bias"]])]
    else:                                      # softmax, mlp: [out × in] weights, then biases
        p, layers, d = np.asarray(m["params"], np.float32), [], x.shape[1]
        k = m["head"]["multiclass"] if isinstance(m["head"], dict) else 1
        for h in m.get("hidden", []) + [k]:
            layers.append((p[: h * d].reshape(h, d), p[h * d : h * d + h]))
            p, d = p[h * d + h :], h
    for i, (w, b) in enumerate(layers):
        x = x @ np.asarray(w, np.float64).T + np.asarray(b, np.float32)
        if i < len(layers) - 1:
            x = np.tanh(x) if m.get("activation") == "tanh" else np.maximum(x, 0.0)
    if m["head"] == "regression":
        return x[:, 0]
    if m["head"] == "binary":
        return 1 / (1 + np.exp(-x[:, 0]))      # predict's `probability`
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)    # predict's `probabilities`

m = json.load(open("model.json"))
p = score(m, features(m, pq.read_table("data.parquet")))

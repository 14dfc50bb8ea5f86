# tests/it/ppo_models.bash: models for the ppo integration tests (sourced, not run). Needs
# python3 (its standard library only).

# score_model_from_lm SRC DST SEED: a reward model (GPT2ForSequenceClassification, num_labels
# 1) made from the language model in SRC: its trunk, tokenizer and rlhf block, the tensors
# renamed as save_pretrained writes a score model ("transformer." prefix), and a score head
# (1, C) of N(0, 0.1) draws from SEED. Its scores depend on the text through the trained trunk,
# so different responses get different rewards; what they mean does not matter to the tests.
score_model_from_lm() {
    python3 - "$1" "$2" "$3" <<'PY'
import json, os, random, shutil, struct, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst, exist_ok=True)
with open(os.path.join(src, "model.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
meta = header.pop("__metadata__", {"format": "pt"})
out, blobs, off = {"__metadata__": meta}, [], 0
for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
    a, b = t["data_offsets"]
    out["transformer." + name] = dict(t, data_offsets=[off, off + b - a])
    blobs.append(data[a:b])
    off += b - a
cfg = json.load(open(os.path.join(src, "config.json")))
C = cfg["n_embd"]
rng = random.Random(seed)
score = struct.pack("<%df" % C, *[rng.gauss(0.0, 0.1) for _ in range(C)])
out["score.weight"] = {"dtype": "F32", "shape": [1, C], "data_offsets": [off, off + len(score)]}
blobs.append(score)
hdr = json.dumps(out, separators=(",", ":")).encode()
hdr += b" " * (-len(hdr) % 8)
with open(os.path.join(dst, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + b"".join(blobs))
cfg["architectures"] = ["GPT2ForSequenceClassification"]
cfg["num_labels"] = 1
cfg["id2label"] = {"0": "LABEL_0"}
cfg["label2id"] = {"LABEL_0": 0}
json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=2)
for name in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(src, name), os.path.join(dst, name))
PY
}

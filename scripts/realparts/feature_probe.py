#!/usr/bin/env python3
"""Is what the questions ask about in DINOv2's features? A ridge-regression linear probe from
base-view patch features (hidden states 4, 8, 11 — 11 is what fovea-dino-smol's projector
reads) to the colour and shape of the object under the patch, trained on patches of the first
55 held-out scenes and tested on those of the next 25.

    python3 scripts/realparts/feature_probe.py
"""
import json, numpy as np, torch, sys
sys.path.insert(0, "scripts/testmodel")
import scenes
from PIL import Image
from transformers import Dinov2Model, LlavaNextImageProcessor
from transformers.image_utils import PILImageResampling
torch.set_num_threads(2)
proc = LlavaNextImageProcessor.from_pretrained(".cache/models/fovea-dino-smol")
tower = Dinov2Model.from_pretrained(".cache/models/dinov2-small").eval()
rows = [json.loads(l) for l in open("data/eval/scenes.jsonl")][:80]
cols = list(scenes.COLOURS); shapes = scenes.SHAPES
X, yc, ys, g = [], [], [], []
for si, r in enumerate(rows):
    img = Image.open("data/eval/" + r["image"]).convert("RGB")
    lab = scenes.label_map(r["objects"], r["width"], r["height"])
    pix = proc(img, return_tensors="pt")["pixel_values"][0][:1]   # base view
    lp = proc(Image.fromarray(lab).convert("RGB"), return_tensors="np", resample=PILImageResampling.NEAREST, do_normalize=False, do_rescale=False)["pixel_values"][0][0, 0]
    with torch.no_grad():
        hs = tower(pix, output_hidden_states=True).hidden_states
    feats = {L: hs[L][0, 1:].numpy() for L in (4, 8, 11)}
    for pi in range(256):
        y0, x0 = divmod(pi, 16)
        patch = lp[y0*14:(y0+1)*14, x0*14:(x0+1)*14]
        vals, counts = np.unique(patch, return_counts=True)
        k = vals[counts.argmax()]
        if k > 0 and counts.max() > 150:
            o = r["objects"][int(k) - 1]
            X.append(np.concatenate([feats[L][pi] for L in (4, 8, 11)])); yc.append(cols.index(o["colour"])); ys.append(shapes.index(o["shape"])); g.append(si)
X = np.array(X); yc = np.array(yc); ys = np.array(ys); g = np.array(g)
train, test = g < 55, g >= 55
def probe(Xs, y, n):
    A = np.c_[Xs, np.ones(len(Xs))]
    Y = np.eye(n)[y]
    W = np.linalg.solve(A[train].T @ A[train] + 1.0 * np.eye(A.shape[1]), A[train].T @ Y[train])
    return ((A[test] @ W).argmax(1) == y[test]).mean()
for i, L in enumerate((4, 8, 11)):
    Xs = X[:, i*384:(i+1)*384]
    print(f"block {L}: colour {probe(Xs, yc, 6):.2f}, shape {probe(Xs, ys, 4):.2f}  ({train.sum()} train / {test.sum()} test patches)")

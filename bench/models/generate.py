#!/usr/bin/python3
"""Generates hepml's HEP-style benchmark and test models with PyTorch.

    /usr/bin/python3 bench/models/generate.py --out DIR [--only NAME[,NAME...]]

Writes, per model, DIR/NAME.onnx (torch.onnx.export, opset 17, eval mode, weights from
torch.manual_seed) and reference data computed by PyTorch itself:

    DIR/NAME/input_<input name>.npy    seeded random inputs, batch 3
    DIR/NAME/output_<output name>.npy  PyTorch's outputs for them
    DIR/NAME/<set>/...                 extra data sets: batch 1 for every batched model,
                                       other graph sizes for the GNNs

and DIR/models.json describing every model, its inputs/outputs (names, dtypes, shapes with
symbolic axes) and its data sets. Each file is checked with onnx.checker and its operator
histogram is printed. The models are small but shaped like the real ones:

  trigger_mlp           L1-trigger MLP, softmax over 5 classes
  deepjet               DeepJet-style jet flavour tagger (Conv1d stacks + LSTMs per branch)
  particlenet           ParticleNet-style EdgeConv GNN (kNN by TopK, GatherElements)
  particle_transformer  ParT-style transformer with pairwise (eta, phi) attention bias
  interaction_network   edge classifier on a flat graph (Gather, ScatterElements add)
  calo_gan              FastCaloGAN-style generator MLP
  calo_cnn              calorimeter-image CNN regression

Every input and output has a dynamic first axis "batch", except interaction_network,
whose graph is flat: its axes are "nodes" and "edges".
"""

import argparse
import collections
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import onnx
import torch
from torch import nn

OPSET = 17
BATCH = 3

torch.set_num_threads(1)


# ---------------------------------------------------------------------------------------
# Models

class TriggerMLP(nn.Module):
    """L1 trigger classifier: 16 summary features -> 5 classes."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                 nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 5))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def conv_stack(channels):
    layers = []
    for cin, cout in zip(channels[:-1], channels[1:]):
        layers += [nn.Conv1d(cin, cout, kernel_size=1), nn.ReLU()]
    return nn.Sequential(*layers)


class DeepJet(nn.Module):
    """Charged/neutral particle and secondary-vertex branches: input BatchNorm, 1x1 Conv1d
    stack, LSTM (last hidden state); concatenated with the global features, dense layers,
    softmax over 6 flavour classes (b, bb, lepb, c, uds, g)."""

    def __init__(self):
        super().__init__()
        self.bn_glob = nn.BatchNorm1d(15)
        self.bn_cpf = nn.BatchNorm1d(16)
        self.bn_npf = nn.BatchNorm1d(6)
        self.bn_sv = nn.BatchNorm1d(12)
        self.conv_cpf = conv_stack([16, 64, 32, 32, 8])
        self.conv_npf = conv_stack([6, 32, 16, 4])
        self.conv_sv = conv_stack([12, 64, 32, 32, 8])
        self.lstm_cpf = nn.LSTM(8, 32, batch_first=True)
        self.lstm_npf = nn.LSTM(4, 16, batch_first=True)
        self.lstm_sv = nn.LSTM(8, 16, batch_first=True)
        self.dense = nn.Sequential(nn.Linear(15 + 32 + 16 + 16, 128), nn.ReLU(), nn.Dropout(0.1),
                                   nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.1),
                                   nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 6))

    @staticmethod
    def branch(x, bn, conv, lstm):
        h = conv(bn(x.transpose(1, 2)))          # (B, C, P)
        _, (h_n, _) = lstm(h.transpose(1, 2))    # (1, B, H)
        return h_n[-1]

    def forward(self, glob, cpf, npf, sv):
        feats = torch.cat([self.bn_glob(glob),
                           self.branch(cpf, self.bn_cpf, self.conv_cpf, self.lstm_cpf),
                           self.branch(npf, self.bn_npf, self.conv_npf, self.lstm_npf),
                           self.branch(sv, self.bn_sv, self.conv_sv, self.lstm_sv)], dim=1)
        return torch.softmax(self.dense(feats), dim=1)


def knn(points, k):
    """Indices of the k nearest neighbours of each point, itself excluded.
    points: (B, C, P) -> (B, P, k)"""
    inner = -2 * torch.matmul(points.transpose(2, 1), points)
    xx = torch.sum(points ** 2, dim=1, keepdim=True)
    neg_dist = -xx - inner - xx.transpose(2, 1)
    return neg_dist.topk(k=k + 1, dim=-1)[1][:, :, 1:]


def neighbour_features(fts, idx):
    """fts (B, C, P), idx (B, P, k) -> edge features (B, 2C, P, k): [x_i, x_j - x_i]."""
    b, c, p = fts.shape
    k = idx.shape[-1]
    index = idx.unsqueeze(1).expand(b, c, p, k)
    centre = fts.unsqueeze(-1).expand(b, c, p, k)
    neighbours = torch.gather(centre, 2, index)   # GatherElements
    return torch.cat([centre, neighbours - centre], dim=1)


class EdgeConv(nn.Module):
    def __init__(self, k, cin, couts):
        super().__init__()
        self.k = k
        layers = []
        for i, cout in enumerate(couts):
            layers += [nn.Conv2d(2 * cin if i == 0 else couts[i - 1], cout, kernel_size=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.Conv1d(cin, couts[-1], kernel_size=1, bias=False),
                                      nn.BatchNorm1d(couts[-1]))
        self.act = nn.ReLU()

    def forward(self, points, features):
        idx = knn(points, self.k)
        x = self.convs(neighbour_features(features, idx)).mean(dim=-1)
        return self.act(x + self.shortcut(features))


class ParticleNet(nn.Module):
    """Two EdgeConv blocks (k=8, the second on the learned features), masked global
    average pooling, dense head, softmax over 2 classes."""

    def __init__(self, k=8):
        super().__init__()
        self.bn_fts = nn.BatchNorm1d(8)
        self.edge1 = EdgeConv(k, 8, (32, 32, 32))
        self.edge2 = EdgeConv(k, 32, (64, 64, 64))
        self.head = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 2))

    def forward(self, points, features, mask):
        coord_shift = (mask == 0).float() * 1e9   # push padded points away from everyone
        fts = self.bn_fts(features) * mask
        fts = self.edge1(points + coord_shift, fts) * mask
        fts = self.edge2(fts + coord_shift, fts) * mask
        pooled = fts.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
        return torch.softmax(self.head(pooled), dim=1)


class Attention(nn.Module):
    """Multi-head attention written in plain ops (MatMul, Softmax), with an additive
    key-padding mask and an optional per-head additive bias."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def split(self, x):
        b, n, _ = x.shape
        return x.reshape(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key, key_bias, attn_bias=None):
        q, k, v = self.split(self.q(query)), self.split(self.k(key)), self.split(self.v(key))
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        scores = scores + key_bias[:, None, None, :]
        if attn_bias is not None:
            scores = scores + attn_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
        return self.out(ctx.reshape(query.shape[0], query.shape[1], -1))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x, kv, key_bias, attn_bias=None):
        x = x + self.attn(self.ln1(x), self.ln1(kv), key_bias, attn_bias)
        return x + self.mlp(self.ln2(x))


class ParticleTransformer(nn.Module):
    """ParT-style: particle embedding, pairwise-interaction bias from (eta, phi) distances,
    two particle-attention blocks, one class-attention block, head, softmax (10 classes).
    Inputs: x (B, N, 16) with eta, phi in features 0, 1; mask (B, N) bool, True = particle."""

    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.embed = nn.Sequential(nn.LayerNorm(16), nn.Linear(16, dim), nn.GELU(), nn.Linear(dim, dim))
        self.pair = nn.Sequential(nn.Conv2d(1, 8, 1), nn.GELU(), nn.Conv2d(8, heads, 1))
        self.blocks = nn.ModuleList([Block(dim, heads, 4 * dim) for _ in range(2)])
        self.cls_block = Block(dim, heads, 4 * dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x, mask):
        valid = mask.float()
        key_bias = (1.0 - valid) * -1e9
        eta, phi = x[:, :, 0], x[:, :, 1]
        deta = eta[:, :, None] - eta[:, None, :]
        dphi = torch.remainder(phi[:, :, None] - phi[:, None, :] + math.pi, 2 * math.pi) - math.pi
        log_dr = torch.log(torch.sqrt(deta ** 2 + dphi ** 2) + 1e-3)
        attn_bias = self.pair(log_dr.unsqueeze(1))                       # (B, heads, N, N)
        h = self.embed(x) * valid.unsqueeze(-1)
        for blk in self.blocks:
            h = blk(h, h, key_bias, attn_bias) * valid.unsqueeze(-1)
        cls = self.cls_token.expand(x.shape[0], 1, -1)
        cls_bias = torch.cat([torch.zeros_like(key_bias[:, :1]), key_bias], dim=1)
        cls = self.cls_block(cls, torch.cat([cls, h], dim=1), cls_bias)
        return torch.softmax(self.head(self.norm(cls[:, 0])), dim=1)


def mlp(sizes, last_act=None):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if last_act is not None:
        layers.append(last_act)
    return nn.Sequential(*layers)


class InteractionNetwork(nn.Module):
    """Tracking-style interaction network on a flat graph: relational MLP on the
    endpoints of each edge, sum of effects per receiving node (ScatterElements add),
    object MLP, edge classifier with sigmoid."""

    EFFECTS = 16

    def __init__(self):
        super().__init__()
        self.relational = mlp([12, 32, 32, self.EFFECTS], nn.ReLU())
        self.object = mlp([6 + 16, 32, 32, 8])
        self.classifier = mlp([8 + 8 + 16, 32, 16, 1])

    def forward(self, x, edge_index):
        src, dst = edge_index[0], edge_index[1]
        effects = self.relational(torch.cat([x[src], x[dst]], dim=1))        # (E, 16)
        # repeat (not expand): torch 1.13's scatter_add export needs index and src shapes
        # it can prove equal, and only repeat with a constant keeps the 16 in the shape.
        index = dst.unsqueeze(1).repeat(1, self.EFFECTS)
        aggregated = torch.zeros(x.shape[0], self.EFFECTS, dtype=x.dtype).scatter_add(0, index, effects)
        h = self.object(torch.cat([x, aggregated], dim=1))                   # (N, 8)
        scores = torch.sigmoid(self.classifier(torch.cat([h[src], h[dst], effects], dim=1))).squeeze(1)
        return scores, h


class CaloGAN(nn.Module):
    """FastCaloGAN-style generator: latent + (energy / 100 GeV, eta, phi) condition -> 266
    voxel energies in units of 100 GeV (Softplus fractions scaled by the incident energy)."""

    def __init__(self):
        super().__init__()
        layers = []
        for a, b in ((53, 128), (128, 256), (256, 512)):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Linear(512, 266))
        self.out = nn.Softplus()

    def forward(self, latent, condition):
        voxels = self.out(self.body(torch.cat([latent, condition], dim=1)))
        return voxels * condition[:, :1]


class CaloCNN(nn.Module):
    """Calorimeter image (1x32x32) -> three Conv/BN/ReLU/MaxPool stages -> dense ->
    (energy, eta, phi) regression."""

    def __init__(self):
        super().__init__()
        layers = []
        for a, b in ((1, 16), (16, 32), (32, 64)):
            layers += [nn.Conv2d(a, b, 3, padding=1), nn.BatchNorm2d(b), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 3))

    def forward(self, image):
        return self.head(self.features(image))


# ---------------------------------------------------------------------------------------
# Inputs

def jet_constituents(rng, batch, n, nfeat, min_count=2):
    """Zero-padded particle lists: per jet a random multiplicity, sorted features."""
    x = np.zeros((batch, n, nfeat), np.float32)
    mask = np.zeros((batch, n), bool)
    for b in range(batch):
        m = int(rng.integers(min_count, n + 1))
        x[b, :m] = rng.normal(0, 1, (m, nfeat))
        mask[b, :m] = True
    return x, mask


def inputs_trigger(rng, batch=BATCH):
    return {"x": rng.normal(0, 1, (batch, 16)).astype(np.float32)}


def inputs_deepjet(rng, batch=BATCH):
    cpf, _ = jet_constituents(rng, batch, 25, 16)
    npf, _ = jet_constituents(rng, batch, 25, 6)
    sv, _ = jet_constituents(rng, batch, 4, 12, min_count=0)
    return {"global": rng.normal(0, 1, (batch, 15)).astype(np.float32), "cpf": cpf, "npf": npf, "sv": sv}


def inputs_particlenet(rng, batch=BATCH, p=64):
    fts, mask = jet_constituents(rng, batch, p, 8, min_count=12)
    pts = np.zeros((batch, p, 2), np.float32)
    pts[mask] = rng.normal(0, 0.4, (int(mask.sum()), 2))
    return {"points": np.ascontiguousarray(pts.transpose(0, 2, 1)),
            "features": np.ascontiguousarray(fts.transpose(0, 2, 1)),
            "mask": mask[:, None, :].astype(np.float32)}


def inputs_part(rng, batch=BATCH, n=32):
    x, mask = jet_constituents(rng, batch, n, 16, min_count=3)
    x[:, :, 0] *= 0.4
    x[:, :, 1] = np.where(mask, rng.uniform(-math.pi, math.pi, (batch, n)), 0)
    return {"x": x, "mask": mask}


def inputs_interaction(rng, nodes, edges):
    x = rng.normal(0, 1, (nodes, 6)).astype(np.float32)
    # Edges from lower to higher "layer", some nodes without incoming edges.
    src = rng.integers(0, nodes - 1, edges)
    dst = np.minimum(src + rng.integers(1, 6, edges), nodes - 1)
    return {"x": x, "edge_index": np.stack([src, dst]).astype(np.int64)}


def inputs_calo_gan(rng, batch=BATCH):
    cond = np.stack([rng.uniform(0.1, 2.0, batch), rng.uniform(-2.5, 2.5, batch),
                     rng.uniform(-math.pi, math.pi, batch)], axis=1).astype(np.float32)
    return {"latent": rng.normal(0, 1, (batch, 50)).astype(np.float32), "condition": cond}


def inputs_calo_cnn(rng, batch=BATCH):
    img = rng.exponential(0.2, (batch, 1, 32, 32)) * (rng.random((batch, 1, 32, 32)) < 0.3)
    img[:, :, 14:18, 14:18] += rng.exponential(5.0, (batch, 1, 4, 4))   # a shower core
    return {"image": img.astype(np.float32)}


# name -> (constructor, input names, output names, per-input symbolic shapes,
#          output shapes, description, [(set name, input maker)])
MODELS = {
    "trigger_mlp": dict(
        last_layer_scale=8,
        make=TriggerMLP, inputs=["x"], outputs=["probs"],
        in_shapes={"x": ["batch", 16]}, out_shapes={"probs": ["batch", 5]},
        description="L1-trigger MLP 16-64-32-32-5 with ReLU and softmax",
        sets=[("", inputs_trigger)]),
    "deepjet": dict(
        last_layer_scale=15,
        make=DeepJet, inputs=["global", "cpf", "npf", "sv"], outputs=["probs"],
        in_shapes={"global": ["batch", 15], "cpf": ["batch", 25, 16], "npf": ["batch", 25, 6],
                   "sv": ["batch", 4, 12]},
        out_shapes={"probs": ["batch", 6]},
        description="DeepJet-style flavour tagger: BatchNorm + 1x1 Conv1d stacks and an LSTM per "
                    "particle branch (25 charged, 25 neutral, 4 SVs), dense layers, softmax over 6 classes",
        sets=[("", inputs_deepjet)]),
    "particlenet": dict(
        last_layer_scale=100,
        make=ParticleNet, inputs=["points", "features", "mask"], outputs=["probs"],
        in_shapes={"points": ["batch", 2, "particles"], "features": ["batch", 8, "particles"],
                   "mask": ["batch", 1, "particles"]},
        out_shapes={"probs": ["batch", 2]},
        description="ParticleNet-style EdgeConv GNN: kNN (k=8) by pairwise distances + TopK, neighbour "
                    "gather (GatherElements), two EdgeConv blocks (Conv2d 1x1 + BatchNorm + ReLU, mean "
                    "over neighbours), masked global average pooling, dense head, softmax",
        sets=[("", inputs_particlenet),
              ("particles48", lambda rng: inputs_particlenet(rng, batch=2, p=48))]),
    "particle_transformer": dict(
        last_layer_scale=10,
        make=ParticleTransformer, inputs=["x", "mask"], outputs=["probs"],
        in_shapes={"x": ["batch", 32, 16], "mask": ["batch", 32]}, out_shapes={"probs": ["batch", 10]},
        description="ParT-style transformer: embedding, pairwise (eta, phi) distance bias per head, two "
                    "pre-LayerNorm attention blocks with key-padding mask and GELU MLP, class-token "
                    "attention block, head, softmax over 10 classes (attention written in plain ops)",
        sets=[("", inputs_part)]),
    "interaction_network": dict(
        last_layer_scale=40,
        make=InteractionNetwork, inputs=["x", "edge_index"], outputs=["edge_scores", "node_embedding"],
        in_shapes={"x": ["nodes", 6], "edge_index": [2, "edges"]},
        out_shapes={"edge_scores": ["edges"], "node_embedding": ["nodes", 8]},
        description="interaction-network edge classifier on a flat graph: endpoint gather, relational "
                    "MLP, ScatterElements(reduction=add) aggregation, object MLP, sigmoid edge scores",
        sets=[("", lambda rng: inputs_interaction(rng, 40, 120)),
              ("graph17x33", lambda rng: inputs_interaction(rng, 17, 33))]),
    "calo_gan": dict(
        make=CaloGAN, inputs=["latent", "condition"], outputs=["voxels"],
        in_shapes={"latent": ["batch", 50], "condition": ["batch", 3]}, out_shapes={"voxels": ["batch", 266]},
        description="FastCaloGAN-style generator MLP: Linear + BatchNorm1d + LeakyReLU x3, Softplus "
                    "voxel fractions scaled by the incident energy (266 voxels)",
        sets=[("", inputs_calo_gan)]),
    "calo_cnn": dict(
        last_layer_scale=10,
        make=CaloCNN, inputs=["image"], outputs=["regression"],
        in_shapes={"image": ["batch", 1, 32, 32]}, out_shapes={"regression": ["batch", 3]},
        description="calorimeter-image CNN: (Conv2d 3x3 + BatchNorm + ReLU + MaxPool) x3, dense, "
                    "3 regression outputs",
        sets=[("", inputs_calo_cnn)]),
}


def sharpen_last_linear(model, factor):
    """Scales the last Linear layer: a freshly initialized classifier gives near-uniform
    softmax outputs that hide errors in the logits; peaked outputs expose them."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.mul_(factor)
        last.bias.mul_(factor)


def randomize_batchnorm(model, gen):
    """Non-trivial running statistics so eval-mode BatchNorm is not an identity."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.8 + 0.6)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


NP_TO_ONNX_NAME = {np.dtype(np.float32): "float32", np.dtype(np.int64): "int64", np.dtype(bool): "bool"}


def build(name, spec, out, seed):
    torch.manual_seed(seed)
    model = spec["make"]()
    randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    sharpen_last_linear(model, spec.get("last_layer_scale", 1.0))
    model.eval()
    rng = np.random.default_rng(seed)
    data_sets = []
    sets = list(spec["sets"])
    if any("batch" in shape for shape in spec["in_shapes"].values()):
        # Also batch 1, unlike the export's example batch: catches shapes baked in at export
        # (torch warns that LSTM initial states may be).
        sets.append(("batch1", lambda r: spec["sets"][0][1](r, batch=1)))
    for set_name, maker in sets:
        inputs = maker(rng)
        with torch.no_grad():
            outs = model(*[torch.from_numpy(inputs[n]) for n in spec["inputs"]])
        outs = outs if isinstance(outs, tuple) else (outs,)
        folder = os.path.join(out, name, set_name) if set_name else os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        for n in spec["inputs"]:
            np.save(os.path.join(folder, f"input_{n}.npy"), inputs[n])
        for n, t in zip(spec["outputs"], outs):
            np.save(os.path.join(folder, f"output_{n}.npy"), t.numpy())
        rel = os.path.relpath(folder, out)
        data_sets.append({
            "dir": rel,
            "inputs": {n: {"file": f"{rel}/input_{n}.npy", "shape": list(inputs[n].shape)} for n in spec["inputs"]},
            "outputs": {n: {"file": f"{rel}/output_{n}.npy", "shape": list(t.shape)}
                        for n, t in zip(spec["outputs"], outs)},
        })
        if not set_name:
            example = inputs

    path = os.path.join(out, f"{name}.onnx")
    dynamic = {n: {i: d for i, d in enumerate(spec["in_shapes"][n]) if isinstance(d, str)} for n in spec["inputs"]}
    dynamic.update({n: {i: d for i, d in enumerate(spec["out_shapes"][n]) if isinstance(d, str)}
                    for n in spec["outputs"]})
    with torch.no_grad():
        torch.onnx.export(model, tuple(torch.from_numpy(example[n]) for n in spec["inputs"]), path,
                          input_names=spec["inputs"], output_names=spec["outputs"], dynamic_axes=dynamic,
                          opset_version=OPSET, do_constant_folding=True)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    hist = collections.Counter(n.op_type for n in proto.graph.node)
    io = lambda vis: [{"name": v.name,
                       "dtype": onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[v.type.tensor_type.elem_type].name,
                       "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]}
                      for v in vis]
    init_names = {i.name for i in proto.graph.initializer}
    entry = {
        "name": name, "file": f"{name}.onnx", "description": spec["description"],
        "opset": OPSET, "seed": seed,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "inputs": io([v for v in proto.graph.input if v.name not in init_names]),
        "outputs": io(proto.graph.output),
        "operators": dict(sorted(hist.items())),
        "data_sets": data_sets,
        "tolerance": {"atol": 1e-4},
    }
    return entry, hist


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (model files and data are replaced)")
    ap.add_argument("--only", help="comma-separated subset of: " + ", ".join(MODELS))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"generate.py: unknown model(s) {unknown}")
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "models.json")
    manifest = {"generator": "bench/models/generate.py", "torch": torch.__version__, "onnx": onnx.__version__,
                "opset": OPSET, "batch": BATCH, "models": []}
    if args.only and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest["models"] = [m for m in json.load(f)["models"] if m["name"] not in names]
    for i, name in enumerate(MODELS):
        if name not in names:
            continue
        t0 = time.time()
        shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
        entry, hist = build(name, MODELS[name], args.out, seed=1000 + i)
        manifest["models"].append(entry)
        print(f"{name}: {entry['parameters']} parameters, {sum(hist.values())} nodes, "
              f"{len(entry['data_sets'])} data set(s), {time.time() - t0:.1f}s")
        print("    " + ", ".join(f"{op} {n}" for op, n in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))))
    manifest["models"].sort(key=lambda m: list(MODELS).index(m["name"]))
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1)
    print(f"generate.py: {len(names)} model(s) written to {args.out}")


if __name__ == "__main__":
    main()

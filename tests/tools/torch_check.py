"""Loads `flowgrad export --layout torch` weights of zoo/lstm.yaml into the same model built from torch.nn
with load_state_dict(strict=True), and compares its reconstruction of INPUT with flowgrad's:

    torch_check.py WEIGHTS.npz INPUT.npy EXPECTED.npy

Exit status 0 when every key loads and the largest difference stays below 1e-5.
"""
import sys

import numpy as np
import torch
from torch import nn


class LstmAutoencoder(nn.Module):  # zoo/lstm.yaml
    def __init__(self):
        super().__init__()
        self.encoder = nn.LSTM(28, 128, batch_first=True)
        self.decoder = nn.LSTM(128, 128, batch_first=True)
        self.decoded = nn.Linear(128, 28)

    def forward(self, x):
        _, (h, _) = self.encoder(x)
        steps, _ = self.decoder(h[-1].unsqueeze(1).repeat(1, x.shape[1], 1))
        return torch.sigmoid(self.decoded(steps))


weights, x, expected = np.load(sys.argv[1]), np.load(sys.argv[2]), np.load(sys.argv[3])
model = LstmAutoencoder()
model.load_state_dict({name: torch.from_numpy(weights[name]) for name in weights.files}, strict=True)
with torch.no_grad():
    got = model(torch.from_numpy(x)).numpy()
difference = float(np.max(np.abs(got - expected)))
print(f"torch_check: {len(weights.files)} tensors loaded strictly; reconstruction differs by at most {difference:.2e}")
sys.exit(0 if difference < 1e-5 else 1)

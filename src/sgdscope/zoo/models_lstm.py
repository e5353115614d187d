"""LSTM sentiment classifier for IMDB (Break-Even App. D, after Keras' imdb_lstm example).

The LSTM is written out step by step with plain tensor ops instead of ``nn.LSTM``: the fused
kernel has no forward-mode AD, which Hessian-vector products (forward-over-reverse) need, and
no vmap rule, which per-example gradients need.

Build it through ``sgdscope.zoo.build_model`` (seeded init).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._shapes import _num_classes, _positive_ints

class LSTMLayer(nn.Module):
    """One LSTM layer over ``N x T x E`` inputs; returns the last hidden state ``N x H``.

    Parameters ``weight_ih`` (4H x E), ``weight_hh`` (4H x H) and one ``bias`` (4H), gates in
    PyTorch's order (input, forget, cell, output). One bias vector, as Keras (``nn.LSTM`` has two).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias = nn.Parameter(torch.empty(4 * hidden_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, steps, _ = x.shape
        gates_x = x @ self.weight_ih.T + self.bias  # N x T x 4H, all steps at once
        h = x.new_zeros(n, self.hidden_size)
        c = x.new_zeros(n, self.hidden_size)
        for t in range(steps):
            i, f, g, o = (gates_x[:, t] + h @ self.weight_hh.T).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        return h


class _LSTMClassifier(nn.Module):
    def __init__(self, num_embeddings: int, embedding_dim: int, hidden: int, num_classes: int):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        self.lstm = LSTMLayer(embedding_dim, hidden)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.fc(self.lstm(self.embedding(tokens)))


def lstm(
    input_shape: Sequence[int] = (80,),
    num_classes: int = 2,
    *,
    vocab_size: int = 20_000,
    embedding_dim: int = 128,
    hidden: int = 100,
) -> nn.Module:
    """Embedding - LSTM(100) - linear, on token ids ``N x 80`` (int64) -> logits ``N x num_classes``.

    Break-Even App. D: 'an embedding layer followed by an LSTM with 100 hidden units',
    vocabulary of 20,000 words, sequences of length 80. The embedding width is not given; 128
    is the Keras example's. The table has ``vocab_size + 2`` rows: id 0 is padding and id 1
    out-of-vocabulary, as ``load_dataset("imdb")`` writes them. Classification uses the last
    hidden state (sequences are padded on the left). ``input_shape`` is ``(sequence_length,)``
    and only checked: any length works.

    Parameters, default configuration: 20,002*128 + 4*100*(128 + 100 + 1) + 100*2 + 2 = 2,652,058.
    """
    if len(tuple(input_shape)) != 1:
        raise ValueError(f"lstm: input_shape must be (sequence_length,), got {tuple(input_shape)!r}")
    _positive_ints("lstm", "input_shape", input_shape)
    k = _num_classes("lstm", num_classes)
    vocab_size, embedding_dim, hidden = _positive_ints("lstm", "vocab_size, embedding_dim and hidden", (vocab_size, embedding_dim, hidden))
    return _LSTMClassifier(vocab_size + 2, embedding_dim, hidden, k)

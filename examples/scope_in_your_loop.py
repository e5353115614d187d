"""sgdscope inside your own training loop: three lines (the Scope, after_step, load_run).

Trains a small MLP on scikit-learn's digits with plain PyTorch and records the Break-Even
instruments every 20 steps plus the loss interpolation between consecutive iterates.

    python examples/scope_in_your_loop.py
"""
import torch
from torch import nn

import sgdscope

data = sgdscope.zoo.load_dataset("digits", val_size=200, seed=0)
x, y = data.train.x.flatten(1), data.train.y
model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True,
                                     generator=torch.Generator().manual_seed(0))

probes = sgdscope.probes.break_even(every=20, k=5, num_batches=10) + [sgdscope.probes.interpolation(10, every=1)]
scope = sgdscope.Scope(model, loss_fn, curvature_data=(x[:256], y[:256]), probes=probes,  # 1
                       sink="runs/example-scope", noise_data=(x, y), train_size=len(y), batch_size=32)

step = 0
for epoch in range(3):
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        scope.after_step(step, optimizer=optimizer, batch=(xb, yb), loss=loss.detach(), epoch=epoch)  # 2
        step += 1
scope.close()

df = sgdscope.load_run(scope.run_dir)  # 3
top = df[(df.type == "top_eigenvalues") & (df.name == "lambda_1")]
noise = df[(df.type == "gradient_noise") & (df.name == "lambda_1")]
print(f"{len(df)} rows in {scope.run_dir}")
print("lambda_H^1 along training:", top.value.round(3).tolist())
print("lambda_K^1 along training:", noise.value.round(3).tolist())
print("barriers crossed:", int(df[(df.type == "interpolation") & (df.name == "crossed")].value.sum()), "of", step, "steps")

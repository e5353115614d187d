"""A tiny run config shared by the runner tests (synthetic data, an 8-unit MLP, float64)."""


def tiny_config(out, **sections):
    cfg = {
        "name": "tiny",
        "out": str(out),
        "seed": 0,
        "dtype": "float64",
        "data": {"name": "synthetic", "options": {"num_train": 96, "num_test": 32, "dim": 6, "num_classes": 3}},
        "model": {"name": "mlp", "widths": [8]},
        "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.5},
        "train": {"epochs": 3, "batch_size": 16, "checkpoint_every": 5},
        "measure": {"curvature_examples": 32, "curvature_batch": 16, "eval_examples": 64},
        "probes": {
            "top_eigenvalues": {"every": 4, "k": 3},
            "gradient_noise": {"every": 6, "num_batches": 5, "batch_size": 8, "k": 2},
            "interpolation": {"every": 3, "num_points": 5},
            "loss_change": {"every": 2},
        },
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg

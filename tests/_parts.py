"""Parts defined only in the tests (no library code): a loss that selects by a
lower-is-better metric."""

import torch

from spikegrad.losses import Selection


class ReadoutMSE:
    """Mean squared error between the readout's reduced voltages and the one-hot target;
    reports accuracy and the error, and selects by the error (lower is better)."""

    name = "test-mse"
    metrics = ("accuracy", "mse")
    selection = Selection("mse", higher_is_better=False)

    def _errors(self, out, y):
        return (out - torch.nn.functional.one_hot(y, out.shape[1]).to(out.dtype)).pow(2).mean(dim=1)

    def __call__(self, out, y):
        return self._errors(out, y).mean()

    def predict(self, out):
        return out.argmax(1)

    def batch_metrics(self, out, y):
        return {"accuracy": int((self.predict(out) == y).sum()), "mse": float(self._errors(out.detach(), y).sum())}

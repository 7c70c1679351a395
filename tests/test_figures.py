"""Figures: files written and the numbers behind them."""

import matplotlib.image as mpimg
import torch

from spikegrad import SNN
from spikegrad.figures import activity_snapshot


def test_activity_snapshot_writes_png_and_returns_what_it_plots(tmp_path):
    torch.manual_seed(0)
    net = SNN(2, [12, 8], 2, recurrent=True, readout_steps=5)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(30)
    x = torch.zeros(60, 2)
    x[[3, 9, 14], 0] = 1
    x[[5, 20], 1] = 1
    out = activity_snapshot(net, x, 5.0, tmp_path / "a.png", title="clicks", class_names=["left", "right"],
                            label=0, spans=[(0, 100, "stimulus"), (100, 250, "delay")])
    image = mpimg.imread(tmp_path / "a.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 600
    assert (out["inputs"] == x.numpy()).all()
    logits, rec = net.run(x.unsqueeze(0))
    assert [h.sum() for h in out["hidden"]] == [float(s.detach().sum()) for s in rec.spikes]
    assert out["hidden"][0].sum() > 0
    assert (out["readout"] == rec.readout[0].detach().numpy()).all()
    assert out["prediction"] == int(logits.argmax(1))


def test_activity_command_on_a_trained_clicks_run(tmp_path, capsys):
    from spikegrad import Config, train
    from spikegrad.cli import main

    cfg = Config.from_overrides({"data.name": "clicks", "data.clicks.train_samples": 20, "data.clicks.val_samples": 5,
                                 "data.clicks.test_samples": 5, "train.epochs": 1, "model.hidden": [8]})
    train(cfg, tmp_path / "run")
    assert main(["activity", str(tmp_path / "run"), "--sample", "2"]) == 0
    png = tmp_path / "run" / "activity-test-2.png"
    assert mpimg.imread(png).shape[0] > 300
    assert main(["activity", str(tmp_path / "run"), "--sample", "5"]) == 2
    assert "sample 5 is outside the test split (0–4)" in capsys.readouterr().err

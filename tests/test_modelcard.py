"""Model cards are rendered from the config, the log and a real evaluation."""

import torch

from latcomp.modelcard import render_card
from latcomp.modelfile import load_model
from latcomp.results import machine_info
from latcomp.train import TrainConfig, evaluate, train


def test_card_reports_the_evaluation_and_why_training_stopped(tmp_path, tiny_data):
    train(TrainConfig(max_epochs=2, hidden=16, latent=4, lam=2.0), tmp_path, data=tiny_data)
    model = load_model(tmp_path)
    valid = evaluate(model, torch.from_numpy(tiny_data[1].astype("float32")))
    evaluation = {"dithers": 1, "valid": valid, "test": valid, "machine": machine_info()}
    card = render_card(tmp_path, evaluation, "python -m latcomp.modelcard X")
    assert "2 epochs run" in card and "stopped at the budget of 2 epochs" in card
    assert "λ = 2.0" in card
    # the card's negative ELBO is distortion + rate (λ-free), not the λ-weighted loss
    assert f"| test | {valid['distortion'] + valid['rate_nats']:.3f} | {valid['rate_bits']:.3f} |" in card
    assert f"{valid['loss']:.3f}" not in card.split("## Evaluation")[1]

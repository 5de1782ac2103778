"""Every default lives in one place: the trainer's signature, its config and the CLI agree."""

import inspect
from dataclasses import fields

from entitylink.apps.cli import build_parser
from entitylink.model.trainer import MirrorTrainer, TrainingConfig


def test_trainer_signature_matches_its_config():
    signature = inspect.signature(MirrorTrainer.__init__).parameters
    for field in fields(TrainingConfig):
        assert signature[field.name].default == field.default, field.name


def test_cli_train_defaults_come_from_the_config():
    args = build_parser().parse_args(["train", "--ontology", "hpo", "--out", "x"])
    cfg = TrainingConfig()
    assert (args.n_names, args.epochs, args.learning_rate, args.temperature, args.dropout, args.batch_size) == (
        cfg.n_names, cfg.epochs, cfg.learning_rate, cfg.temperature, cfg.dropout, cfg.batch_size)

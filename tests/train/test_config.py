"""RecipeConfig: the command it writes parses back to the same config, every field explicit."""
import pytest

from facezoo.train.config import RecipeConfig
from facezoo.train.recipe_args import default_data_root, parse_recipe


@pytest.mark.parametrize("cfg", [
    RecipeConfig(),
    RecipeConfig(datasets=("celeba", "utkface"), out="runs/joint", data_dirs={"celeba": "/d/c a"}, epochs=3,
                 batch_size=32, input_size=(112, 96), backbone="resnet34", width=0.25, dropout=0.1,
                 learning_rate=5e-4, weight_decay=0.01, val_percent=10, head_weights={"age": 16.0},
                 init="runs/a/best.keras", max_steps_per_epoch=5, early_stopping_patience=2, seed=3),
    RecipeConfig(datasets=("fer2013_face",), init="exported/dmtl_face/model.keras",
                 init_branches={"face": "fer2013_face"}),
])
def test_command_parses_back_to_the_same_config(cfg):
    import shlex
    again = parse_recipe(shlex.split(cfg.command())[2:])
    assert again == cfg
    assert RecipeConfig.from_dict(cfg.to_dict()) == cfg
    for flag in ("--backbone", "--dropout", "--val-percent", "--weight-decay"):  # once dropped by hand
        assert flag in cfg.command()


def test_bad_recipe_flags_are_usage_errors(capsys):
    for argv, message in ((["--head-weight", "age"], "HEAD=NUMBER"), (["--val-percent", "100"], "between 1 and 99"),
                          (["--batch-size", "0"], "positive integer"),
                          (["--init-branch", "face=fer2013"], "DST one of celeba"),
                          (["--init-branch", "face=celeba"], "needs --init")):
        with pytest.raises(SystemExit) as e:
            parse_recipe(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_default_data_root_comes_from_the_recipe_not_the_package(tmp_path, monkeypatch):
    monkeypatch.delenv("FACEZOO_DATA", raising=False)
    root = default_data_root(str(tmp_path / "checkout" / "recipes" / "train_dmtl.py"))
    assert root == str(tmp_path / "checkout" / ".." / "shared" / "data")
    monkeypatch.setenv("FACEZOO_DATA", "/data")
    assert default_data_root("anything") == "/data"

"""The command line: a run writes its table, JSON and PNG; bad input exits non-zero, clearly."""
import json
import subprocess
import sys

import pytest

from clcourse.cli import main


def test_run_prints_the_table_and_writes_json_and_png(tiny_root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--benchmark", "split-mnist", "--method", "finetune", "--scenario", "task",
                 "--profile", "smoke", "--seed", "3", "--out", str(out), "--data", str(tiny_root)])
    assert code == 0
    text = capsys.readouterr().out
    assert "accuracy (%) on each task" in text and "forgetting" in text
    saved = json.loads((out / "result.json").read_text())
    assert len(saved["accuracy_matrix"]) == 5 and saved["seed"] == 3
    assert saved["config"]["scenario"] == "task" and saved["config"]["method"] == "finetune"
    assert set(saved["metrics"]) >= {"average_accuracy", "average_incremental_accuracy",
                                     "last_accuracy", "forgetting", "bwt"}
    assert (out / "accuracy_matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_overrides_reach_the_settings(tiny_root, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--benchmark", "permuted-mnist", "--profile", "smoke", "--tasks", "3",
                 "--epochs", "2", "--hidden", "32", "16", "--optimizer", "sgd", "--momentum", "0.7",
                 "--out", str(out), "--data", str(tiny_root)]) == 0
    config = json.loads((out / "result.json").read_text())["config"]
    assert (config["n_tasks"], config["epochs"], config["hidden"]) == (3, 2, [32, 16])
    assert (config["optimizer"], config["momentum"]) == ("sgd", 0.7)


def test_mnist_usps_records_which_usps_preprocessing_was_used(tiny_root, tmp_path):
    out = tmp_path / "run"
    assert main(["run", "--benchmark", "mnist-usps", "--profile", "smoke", "--out", str(out),
                 "--data", str(tiny_root)]) == 0
    assert json.loads((out / "result.json").read_text())["data"]["usps_source"] == "esl-npz"


@pytest.mark.parametrize("args, words", [
    (["--benchmark", "permuted-nist"], ["invalid choice", "permuted-mnist", "split-mnist"]),
    (["--benchmark", "split-mnist", "--method", "ewcc"], ["invalid choice", "finetune", "joint"]),
    (["--benchmark", "split-mnist", "--profile", "huge"], ["invalid choice", "smoke", "class"]),
    (["--benchmark", "split-mnist", "--scenario", "klass"], ["invalid choice", "domain"]),
])
def test_unknown_names_exit_nonzero_listing_valid_ones(args, words, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run"] + args)
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    for word in words:
        assert word in err


@pytest.mark.parametrize("args, words", [
    (["--epochs", "-1"], ["epochs", "positive"]),
    (["--tasks", "0"], ["n_tasks", "positive"]),
    (["--batch-size", "0"], ["batch_size", "positive"]),
    (["--lr", "0"], ["lr", "> 0"]),
    (["--tasks", "7"], ["split-mnist", "at most 5"]),
])
def test_bad_numbers_are_rejected_with_a_clear_message(args, words, tiny_root, capsys):
    code = main(["run", "--benchmark", "split-mnist", "--profile", "smoke",
                 "--data", str(tiny_root)] + args)
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("clcourse: error:")
    for word in words:
        assert word in err
    assert "Traceback" not in err


def test_missing_data_is_one_clear_error(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["run", "--benchmark", "split-mnist", "--profile", "smoke", "--data", str(empty)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "train-images-idx3-ubyte" in err


def test_data_command_reports_every_dataset(tiny_root, capsys):
    assert main(["data", "--data", str(tiny_root)]) == 0
    out = capsys.readouterr().out
    for name in ("mnist", "usps", "cifar10", "cifar100"):
        assert name in out
    assert "missing" in out  # no CIFAR in the tiny folder


def test_profiles_command_lists_the_tables(capsys):
    assert main(["profiles"]) == 0
    out = capsys.readouterr().out
    assert "[smoke]" in out and "[paper]" in out and "permuted-mnist" in out


def test_module_entry_point_and_console_script_agree():
    out = subprocess.run([sys.executable, "-m", "clcourse", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "run" in out.stdout and "data" in out.stdout

"""Fine-tuning the builtin VLM (TrainConfig.init_weights, trainable): it starts from a checkpoint's weights and
vocabulary, changes only the parameters it names (batch-norm statistics included in what stays), and refuses
configs that cannot work."""
from __future__ import annotations

from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")

from eqa.config import load_config  # noqa: E402
from vlm.builtin_model.runtime import BuiltinModel  # noqa: E402
from vlm.builtin_model.training import data as D  # noqa: E402
from vlm.builtin_model.training import train as T  # noqa: E402


@pytest.fixture(scope="module")
def smoke():
    cfg = load_config(T.TrainConfig, "train_vlm_smoke")
    cfg = replace(cfg, data=replace(cfg.data, kind_counts=True), count_head=True, max_steps=3)
    ds = D.build_dataset("train", cfg.train_houses, cfg.data_seed, cfg.data, workers=1)
    return cfg, ds


@pytest.fixture(scope="module")
def start(smoke, tmp_path_factory):
    cfg, ds = smoke
    model, vocab, _ = T.train(ds, cfg, log=lambda m: None)
    path = tmp_path_factory.mktemp("start") / "builtin_vlm.pt"
    T.save_checkpoint(T.make_checkpoint(model, vocab, cfg), path)
    return path


def test_count_head_fine_tuning_changes_only_the_count_head(smoke, start):
    cfg, ds = smoke
    before = torch.load(start, weights_only=True)
    tuned_cfg = replace(cfg, init_weights=str(start), trainable="count_", kind_count_rows=2, lr=0.01, max_steps=4)
    model, vocab, history = T.train(ds, tuned_cfg, log=lambda m: None)
    assert vocab.words == before["config"]["vocab"]  # the checkpoint's vocabulary, not one built from the data
    after = T.make_checkpoint(model, vocab, tuned_cfg)
    changed = {k for k, v in after["state_dict"].items() if not torch.equal(v, before["state_dict"][k])}
    assert changed and all(k.startswith("count_") for k in changed), changed
    assert after["model_id"] != before["model_id"]
    assert all(torch.isfinite(torch.tensor(h["count"])) for h in history)


def test_fine_tuned_outputs_differ_only_in_count_answers(smoke, start):
    """Relevance, worth and the answers of questions without number choices are bit-identical after count-head
    fine-tuning: exploration with the fine-tuned weights takes the same path."""
    cfg, ds = smoke
    before = torch.load(start, weights_only=True)
    tuned_cfg = replace(cfg, init_weights=str(start), trainable="count_", lr=0.05, max_steps=4)
    model, vocab, _ = T.train(ds, tuned_cfg, log=lambda m: None)
    old, new = BuiltinModel(before), BuiltinModel(T.make_checkpoint(model, vocab, tuned_cfg))
    image = ds["images"][0]
    queries = [("relevance", "Where is the sofa?", (), None), ("worth_exploring", "Where is the sofa?", (), None),
               ("answer", "What colour is the sofa?", ("Red", "Blue", "Grey"), None),
               ("answer", "How many chairs are there?", ("One", "Two", "Three"), None)]
    a, b = old.scores(image, queries), new.scores(image, queries)
    for i in range(3):
        assert (a[i] == b[i]).all(), queries[i]
    assert not (a[3] == b[3]).all()


def test_fine_tuning_refuses_what_cannot_work(smoke, start, tmp_path):
    cfg, ds = smoke
    with pytest.raises(ValueError, match="needs init_weights"):
        replace(cfg, trainable="count_")
    with pytest.raises(ValueError, match="names no parameter"):
        T.train(ds, replace(cfg, init_weights=str(start), trainable="nothing_"), log=lambda m: None)
    with pytest.raises(ValueError, match="count head"):
        T.train(ds, replace(cfg, init_weights=str(start), count_head=False), log=lambda m: None)
    with pytest.raises(ValueError, match="no checkpoint"):
        T.train(ds, replace(cfg, init_weights=str(tmp_path / "missing.pt")), log=lambda m: None)

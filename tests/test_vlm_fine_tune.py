"""Fine-tuning the builtin VLM (TrainConfig.init_weights, trainable): it starts from a checkpoint's weights and
vocabulary, changes only the parameters it names (batch-norm statistics included in what stays), and refuses
configs that cannot work."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
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


def test_a_new_target_head_starts_with_the_grounded_heads_pooling(start):
    """with_target_head copies every weight and its zero last layer leaves every output as it was."""
    from vlm.builtin_model.model import model_from_checkpoint

    model, _ = model_from_checkpoint(torch.load(start, weights_only=True))
    grown = T.with_target_head(model)
    assert grown.has_target_head and not model.has_target_head
    torch.manual_seed(0)
    feats_args = (torch.zeros(3, dtype=torch.long), torch.randint(1, 20, (3, 6)), torch.randint(1, 20, (3, 3, 2)))
    colours = torch.tensor([[0, 7, 9]] * 3)
    with torch.inference_mode():
        image = torch.rand(1, 3, model.config["height"], model.config["width"])
        a = model(model.encode_images(image), *feats_args, c_colours=colours)
        b = grown(grown.encode_images(image), *feats_args, c_colours=colours)
    assert torch.allclose(b["target_logits"], a["ground_logits"])
    for key in ("relevance", "worth", "answer", "colour"):
        assert torch.allclose(a[key], b[key], atol=1e-6), key


def test_target_head_fine_tuning_changes_only_colour_pooling(smoke, start, tmp_path):
    """Adding and training only the target head: only target_ tensors are new or changed; relevance, worth and
    answers without colour choices stay bit-identical, colour answers change; the checkpoint loads for inference."""
    cfg, ds = smoke
    before = torch.load(start, weights_only=True)
    tuned_cfg = replace(cfg, init_weights=str(start), trainable="target_", target_head=True, lr=0.05, max_steps=4)
    model, vocab, history = T.train(ds, tuned_cfg, log=lambda m: None)
    after = T.make_checkpoint(model, vocab, tuned_cfg)
    assert after["config"]["model"]["target_head"] is True
    changed = {k for k, v in after["state_dict"].items()
               if k not in before["state_dict"] or not torch.equal(v, before["state_dict"][k])}
    assert changed and all(k.startswith("target_") for k in changed), changed
    assert all(torch.isfinite(torch.tensor(h["target"])) for h in history)
    path = tmp_path / "builtin_vlm.pt"
    T.save_checkpoint(after, path)
    from vlm.backends.builtin import check_checkpoint

    old = BuiltinModel(before, named_colour_power=0.5)
    new = BuiltinModel(check_checkpoint(torch.load(path, weights_only=True), path), named_colour_power=0.5)
    queries = [("relevance", "Where is the sofa?", (), None), ("worth_exploring", "Where is the sofa?", (), None),
               ("answer", "How many chairs are there?", ("One", "Two", "Three"), None),
               ("answer", "What colour is the sofa?", ("Red", "Blue", "Grey"), None),
               ("relevance", "Where is the grey sofa?", (), None)]
    same, moved = [], []
    for image in ds["images"][:4]:
        a, b = old.scores(image, queries), new.scores(image, queries)
        same.append(all((a[i] == b[i]).all() for i in range(3)))
        moved.append([not np.allclose(a[i], b[i], atol=1e-7) for i in (3, 4)])
    assert all(same)
    assert np.array(moved).any(axis=0).all()  # colour answers and the colour check of relevance follow the head


def test_target_head_cannot_be_dropped_from_a_checkpoint(smoke, start, tmp_path):
    cfg, ds = smoke
    tuned_cfg = replace(cfg, init_weights=str(start), trainable="target_", target_head=True, max_steps=1)
    model, vocab, _ = T.train(ds, tuned_cfg, log=lambda m: None)
    path = tmp_path / "with_head.pt"
    T.save_checkpoint(T.make_checkpoint(model, vocab, tuned_cfg), path)
    with pytest.raises(ValueError, match="has a target head"):
        T.train(ds, replace(cfg, init_weights=str(path), trainable="count_"), log=lambda m: None)

"""Count labels for every kind in every view (data.kind_counts, kind_count_rows): the queries match the question
generator's counts, the labels match the instance ids, the option off changes nothing, and the extra rows train
only the count head and the grounding."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from eqa.config import load_config  # noqa: E402
from vlm.builtin_model.model import BuiltinVLMNet  # noqa: E402
from vlm.builtin_model.training import data as D  # noqa: E402
from vlm.builtin_model.training import kind_counts as K  # noqa: E402
from vlm.builtin_model.training import train as T  # noqa: E402
from vlm.builtin_model.vocab import Vocab  # noqa: E402


@pytest.fixture(scope="module")
def kind_cfg():
    cfg = load_config(T.TrainConfig, "train_vlm_smoke")
    return replace(cfg, data=replace(cfg.data, kind_counts=True), count_head=True, kind_count_rows=3)


@pytest.fixture(scope="module")
def kind_data(kind_cfg):
    return D.build_dataset("train", kind_cfg.train_houses, kind_cfg.data_seed, kind_cfg.data, workers=1)


def test_count_queries_include_every_count_the_generator_asks():
    """Each count question of a house (text and counted instances) is one of the house's count queries."""
    from sim.config import SimConfig
    from sim.house import generate_house
    from sim.questions import QuestionConfig, house_questions

    sim = SimConfig()
    asked = 0
    for hseed in (0, 1, 2):
        qcfg = QuestionConfig(questions_per_house=6, categories=("count",))
        questions = list(house_questions("train", hseed, qcfg, sim, {"count": 0}, {}, limit=6))
        queries = {text: sorted(ids) for text, ids in
                   K.count_queries(generate_house(hseed, qcfg.n_rooms, sim.house, sim.robot))}
        for q in questions:
            assert queries[q.question] == sorted(q.target_ids)
        asked += len(questions)
    assert asked >= 6


def test_view_labels_follow_the_instance_ids():
    ids = np.zeros((24, 32), np.int64)
    ids[0:5, 0:4] = 1  # 20 pixels, centroid row 2, column 1: cell (0, 0)
    ids[20:22, 30:32] = 2  # 4 pixels: shows cells, too few for a centre
    ids[9:15, 17:23] = 3  # 36 pixels, centroid cell (1, 2)
    queries = [("a", [1, 2]), ("b", [7]), ("c", [3, 1])]
    shown, cells, centres = K.view_labels(ids, queries, centre_min=5)
    assert shown.tolist() == [0, 2]  # "b" shows no pixel: not stored (a zero row at training)
    assert cells.shape == centres.shape == (2, 3 * 4)
    assert np.flatnonzero(cells[0]).tolist() == [0, 11] and np.flatnonzero(cells[1]).tolist() == [0, 6]
    assert np.flatnonzero(centres[0]).tolist() == [0] and centres[0].sum() == 1
    assert centres[1, 0] == 1 and centres[1, 6] == 1 and centres[1].sum() == 2


def test_kind_counts_add_labels_and_leave_the_rest_unchanged():
    dcfg = D.DataConfig(width=64, height=48, questions_per_house=2, answerable_views=1, near_views=0,
                        random_views=2, point_candidates=60)
    plain = D.house_samples("train", 5, dcfg)
    kinds = D.house_samples("train", 5, replace(dcfg, kind_counts=True))
    assert not any(k.startswith("kind") for k in plain)
    for k, v in plain.items():
        assert (v == kinds[k]) if k == "questions" else np.array_equal(v, kinds[k]), k
    V, n = len(kinds["images"]), len(kinds["kind_view"])
    assert n > 0 and np.all(np.diff(kinds["kind_view"]) >= 0) and kinds["kind_view"].max() < V
    assert kinds["kind_query"].max() < len(kinds["kind_questions"])
    assert np.unpackbits(kinds["kind_cells"], axis=-1).any(axis=1).all()  # stored pairs show their things
    merged = D.merge([kinds, kinds])
    assert merged["kind_pair_view"][n:].min() >= V and merged["kind_first"].tolist() == [0] * V + [
        len(kinds["kind_questions"])] * V


def test_draw_rows_takes_shown_queries_and_one_zero_row():
    starts, ends = np.array([0, 3]), np.array([3, 3])
    pair_query = np.array([4, 6, 7])
    first, n_queries = np.array([4, 4]), np.array([5, 5])  # the house's queries: 4..8
    rng = np.random.default_rng(0)
    pairs, queries = K.draw_rows(0, starts, ends, pair_query, first, n_queries, 3, rng)
    assert len(pairs) == 3 and set(pairs[:2]) <= {0, 1, 2} and pairs[2] == -1 and queries[2] in (5, 8)
    assert queries[:2].tolist() == pair_query[pairs[:2]].tolist()
    pairs, queries = K.draw_rows(1, starts, ends, pair_query, first, n_queries, 3, rng)
    assert pairs.tolist() == [-1] and 4 <= queries[0] <= 8  # a view showing nothing: one zero row


def test_kind_rows_train_only_the_count_head_and_the_grounding(kind_data, kind_cfg):
    texts = [q["question"] for q in kind_data["questions"] + kind_data["kind_questions"]]
    vocab = Vocab.build(texts + [c for q in kind_data["questions"] for c in q["choices"]])
    H, W = kind_data["images"].shape[1:3]
    model = BuiltinVLMNet(len(vocab), W, H, 16, 8, 2, count_head=True).eval()
    data = T.Batches(kind_data, vocab, model.config)
    views = np.arange(len(data.images))
    plain = data.batch(views)
    extra = data.batch(views, kind_rows=3, rng=np.random.default_rng(0))
    aux = extra["aux"]
    assert "aux" not in plain and aux.sum() > 0 and not aux[:len(plain["pairs"])].any()
    assert (extra["pairs"][aux] == -1).all() and (extra["dir"][aux] == -1).all() and (extra["relevant"][aux] == 0).all()
    zero = ~extra["target_cells"][aux].any(1)  # the one row per view of a query it does not show
    assert 0 < zero.sum() <= len(views) and (extra["centres"][aux][zero] == 0).all()
    assert (extra["centres"][aux][~zero].sum(1) > 0).any()
    with torch.no_grad():
        a = T.losses(T.run_model(model, plain), plain, kind_cfg)
        b = T.losses(T.run_model(model, extra), extra, kind_cfg)
    for k in ("answer", "uniform", "relevance", "worth", "direction", "colour"):
        assert torch.allclose(a[k], b[k], atol=1e-5), k
    assert not torch.allclose(a["count"], b["count"]) and not torch.allclose(a["ground"], b["ground"])


def test_kind_rows_need_the_count_head_and_kind_data(kind_data, kind_cfg):
    with pytest.raises(ValueError, match="kind_counts"):
        T.train(kind_data, replace(kind_cfg, count_head=False, max_steps=1), log=lambda m: None)
    plain = {k: v for k, v in kind_data.items() if not k.startswith("kind_")}
    with pytest.raises(ValueError, match="kind_counts"):
        T.train(plain, replace(kind_cfg, max_steps=1), log=lambda m: None)


def test_kind_counts_name_their_own_data_cache():
    from eqa.commands.train_vlm import data_cache_key

    cfg = load_config(T.TrainConfig, "train_vlm")
    key = data_cache_key("train", cfg.train_houses, 0, cfg.data)
    assert key == "dd70a8e7d54d"
    assert key != data_cache_key("train", cfg.train_houses, 0, replace(cfg.data, kind_counts=True))

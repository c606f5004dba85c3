"""Security findings of the hostile probe (issue 27), kept fixed: ids that are paths, credentials on a
redirect, weights and calibrations changed behind their ids."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from eqa.cli import main
from hostile import SMALL, completion, questions_file, scripted_server, send
from vlm.conformal import Calibration, CalibrationError, calibrate
from vlm.errors import VLMResponseError


@pytest.mark.parametrize("bad_id", ["../../escaped", "ABSOLUTE", "a/b", ".hidden", ""])
def test_question_ids_that_are_paths_are_refused_with_their_line(tmp_path, capsys, bad_id):
    if bad_id == "ABSOLUTE":
        bad_id = str(tmp_path / "absolute-episode")

    def edit(records):
        records[1]["id"] = bad_id
    data = questions_file(tmp_path / "q.jsonl", edit=edit)
    out = tmp_path / "deep" / "run"
    assert main(["bench", "--dataset", str(data), "--out", str(out)] + SMALL) == 2
    err = capsys.readouterr().err
    assert f"{data}:2:" in err and ("cannot name an episode folder" in err or "non-empty string" in err)
    assert not (out / "episodes").exists()  # nothing ran, nothing was written anywhere
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "deep" / "escaped").exists()
    assert not (tmp_path / "absolute-episode").exists()


def test_report_reads_episode_folders_not_paths_from_summaries(tmp_path, capsys):
    data = questions_file(tmp_path / "q.jsonl", n=1)
    run = tmp_path / "run"
    assert main(["bench", "--dataset", str(data), "--out", str(run)] + SMALL) == 0
    folder = next(p for p in (run / "episodes").iterdir() if not p.name.startswith("."))
    summary = json.loads((folder / "summary.json").read_text())
    (tmp_path / "elsewhere").mkdir()
    shutil.copytree(folder, tmp_path / "elsewhere" / "x")
    summary["episode_id"] = "../../elsewhere/x"
    (folder / "summary.json").write_text(json.dumps(summary))
    capsys.readouterr()
    assert main(["report", str(run)]) == 2
    assert "names episode '../../elsewhere/x', not its folder" in capsys.readouterr().err


def test_the_openai_client_never_follows_a_redirect_with_the_key(monkeypatch):
    from vlm.backends.openai import OpenAIConfig, OpenAIScorer
    from vlm.scoring import PromptRequest

    monkeypatch.setenv("EQA_TEST_KEY", "secret-key")
    with scripted_server(lambda h: send(h, 200, completion([("A", -0.1), ("B", -2.5)]))) as (elsewhere, stolen):
        def redirect(handler):
            send(handler, 302, b"", {"Location": elsewhere + "/chat/completions"})
        with scripted_server(redirect) as (url, seen):
            scorer = OpenAIScorer(OpenAIConfig(base_url=url, model="m", api_key_env="EQA_TEST_KEY", max_retries=0))
            with pytest.raises(VLMResponseError, match=r"redirected \(HTTP 302\) to http://127\.0\.0\.1:\d+/v1/chat"):
                scorer.score([PromptRequest("Q?", candidates=("A", "B"))])
            assert seen and seen[0]["headers"]["Authorization"] == "Bearer secret-key"
        assert stolen == []  # the key never reached the other address


def _shipped_checkpoint():
    import torch

    from vlm.backends.builtin import WEIGHTS_FILE

    return WEIGHTS_FILE, torch.load(WEIGHTS_FILE, map_location="cpu", weights_only=True)


def test_builtin_weights_that_differ_from_their_id_are_refused(tmp_path):
    import torch

    from vlm.backends.builtin import BuiltinConfig, load_builtin

    shipped, ckpt = _shipped_checkpoint()
    (tmp_path / "MODEL_CARD.md").write_text("card")
    name = next(k for k, v in ckpt["state_dict"].items() if v.numel() >= 16384 and v.is_floating_point())
    ckpt["state_dict"][name] = torch.zeros_like(ckpt["state_dict"][name])  # 64 KB zeroed, same model id
    torch.save(ckpt, tmp_path / "builtin_vlm.pt")
    with pytest.raises(ValueError, match="weights do not match its model id"):
        load_builtin(BuiltinConfig(weights=str(tmp_path / "builtin_vlm.pt")))
    raw = bytearray(shipped.read_bytes())
    raw[len(raw) // 2:len(raw) // 2 + 65536] = bytes(65536)  # the same zeroing in the file itself
    (tmp_path / "builtin_vlm.pt").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="builtin_vlm.pt: not a readable builtin checkpoint|do not match"):
        load_builtin(BuiltinConfig(weights=str(tmp_path / "builtin_vlm.pt")))


@pytest.mark.integration
def test_hf_and_clip_model_ids_follow_the_weights_content(tmp_path):
    pytest.importorskip("transformers")
    from vlm_fixtures import build_tiny_hf_model

    from vlm.backends.hf import checkpoint_fingerprint
    from vlm.cache import files_digest

    model = build_tiny_hf_model(tmp_path / "tiny", "qwen2_vl", seed=0)
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    assert checkpoint_fingerprint(copy) == checkpoint_fingerprint(model)  # the same weights, another folder
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-4096:] = bytes(4096)  # same name, same size, other weights
    weights.write_bytes(bytes(data))
    assert checkpoint_fingerprint(copy) != checkpoint_fingerprint(model)
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"  # clip: one weights file
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 999 + b"y")
    assert files_digest([a]) != files_digest([b]) and len(files_digest([a])) == 16


def test_an_edited_calibration_is_detected(tmp_path):
    cal = calibrate([1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9, 2.0], 0.2, "m", "v", "h")
    path = cal.save(tmp_path / "cal.json")
    assert Calibration.load(path) == cal
    data = json.loads(path.read_text())
    data["threshold"] = 1.05  # a lower threshold: it would stop earlier, with less coverage
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="checksum mismatch"):
        Calibration.load(path)
    del data["checksum"]
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="missing fields \\['checksum'\\]"):
        Calibration.load(path)


def test_a_calibration_that_can_never_stop_early_says_so(tmp_path, capsys):
    from eqa.sim_driver import load_sim_run, method_calibration
    from vlm import make_vlm

    run = load_sim_run("semantic", ["stop.policy=conformal"])
    vlm = make_vlm(run.method.vlm)
    cal = calibrate([1.2, 1.3, 1.4], 0.1, vlm.info.model_id, vlm.info.prompt_version, run.exploration_hash())
    assert cal.never_stops and np.isinf(cal.threshold)
    path = cal.save(tmp_path / "few.json")
    run = load_sim_run("semantic", ["stop.policy=conformal", f"stop.calibration={path}"])
    method_calibration(run, vlm)
    err = capsys.readouterr().err
    assert "this calibration can never stop early: N = 3 calibration episodes are too few for eps 0.1 " \
           "(it needs at least 9)" in err

"""transformers backend: AutoModelForImageTextToText + AutoProcessor from a local directory
(Qwen2-VL / Qwen2.5-VL / LLaVA families). One right-padded forward pass per batch of prompts;
the next-token distribution is read at each sequence's last real token. Open questions: greedy
`generate` over one user turn holding all of the views. Requests sharing an image
(a view's answer / relevance / worth_exploring queries) run the vision encoder once for it, through
the model's `mm_encoder_outputs` input, where the model accepts that input."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from mapping.bounds import Range, check_bounds
from vlm.cache import files_digest
from vlm.errors import WeightsNotFoundError
from vlm.imaging import image_hash
from vlm.probs import normalize_token
from vlm.prompted import PromptedVLM
from vlm.registry import Backend
from vlm.scoring import GeneratedText, NextToken, PromptRequest, TextRequest

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class HFConfig:
    """transformers backend (`vlm.hf`): a local checkpoint directory (never downloaded). max_batch_size:
    queries per forward pass. model_id: name used in cache keys and records (default: the directory name).
    share_image_encoding: encode an image shared by several queries once (where the model allows)."""

    model_path: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    max_batch_size: Annotated[int, Range(ge=1, le=256)] = 8
    attn_implementation: Optional[str] = None
    model_id: Optional[str] = None
    share_image_encoding: bool = True

    def __post_init__(self) -> None:
        check_bounds(self)
        if not self.model_path:
            raise ValueError("the hf backend needs hf.model_path (a local checkpoint directory)")
        if self.dtype not in _DTYPES:
            raise ValueError(f"hf.dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        if not self.device:
            raise ValueError("hf.device must be set (e.g. 'cpu', 'cuda', 'cuda:1')")


def checkpoint_fingerprint(path: Path) -> str:
    """Hash of the names and bytes of config.json and the weight files (identifies the weights wherever the folder
    is; changed weights of the same name and size get another id)."""
    config = [path / "config.json"] if (path / "config.json").is_file() else []
    return files_digest(config + sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")))


class HFScorer:
    """TokenScorer over a local transformers image-text-to-text checkpoint."""

    backend = "hf"
    probability_method = "logprobs"

    def __init__(self, config: HFConfig) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        path = Path(config.model_path).expanduser()
        if not (path / "config.json").is_file():
            raise WeightsNotFoundError(f"hf.model_path {str(path)!r} is not a local checkpoint directory "
                                       "(no config.json); nothing is downloaded")
        self.config = config
        self.device = torch.device(config.device)
        self.processor = AutoProcessor.from_pretrained(str(path), local_files_only=True)
        kwargs = {"dtype": _DTYPES[config.dtype], "local_files_only": True}
        if config.attn_implementation:
            kwargs["attn_implementation"] = config.attn_implementation
        self.model = AutoModelForImageTextToText.from_pretrained(str(path), **kwargs).to(self.device).eval()
        self.tokenizer = self.processor.tokenizer
        self.model_id = f"{config.model_id or path.name}@{checkpoint_fingerprint(path)}"
        self._label_ids: dict[tuple[str, bool], list[int]] = {}
        self.shares_image_encoding = config.share_image_encoding and (
            "mm_encoder_outputs" in inspect.signature(self.model.forward).parameters
            and hasattr(self.model, "get_image_features"))

    # -- candidate tokens -------------------------------------------------------------------------
    def label_token_ids(self, label: str, casefold: bool = False) -> list[int]:
        """Ids of single vocabulary tokens that normalise to `label` ("A", " A"; any case if casefold)."""
        key = (label, casefold)
        if key not in self._label_ids:
            forms = {label}
            if casefold:
                forms |= {label.lower(), label.upper(), label.capitalize()}
            ids = set()
            for form in forms:
                for text in (form, " " + form):
                    enc = self.tokenizer.encode(text, add_special_tokens=False)
                    if len(enc) == 1 and normalize_token(self.tokenizer.decode(enc), casefold) == normalize_token(
                            label, casefold):
                        ids.add(enc[0])
            if not ids:
                raise ValueError(f"candidate label {label!r} is not a single token of model {self.model_id}")
            self._label_ids[key] = sorted(ids)
        return self._label_ids[key]

    # -- scoring ----------------------------------------------------------------------------------
    def _chat_text(self, req: PromptRequest) -> str:
        messages = []
        if req.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": req.system}]})
        content = ([{"type": "image"}] if req.image is not None else []) + [{"type": "text", "text": req.text}]
        messages.append({"role": "user", "content": content})
        return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    @torch.inference_mode()
    def _forward(self, requests: Sequence[PromptRequest]) -> tuple[torch.Tensor, list[int]]:
        """Log-softmax next-token distributions (B, V) float32 and real token counts per request."""
        texts = [self._chat_text(r) for r in requests]
        images = [r.image for r in requests if r.image is not None]
        self.tokenizer.padding_side = "right"
        inputs = self.processor(text=texts, images=[Image.fromarray(im) for im in images] or None, padding=True,
                                return_tensors="pt")
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(_DTYPES[self.config.dtype])
        if self.shares_image_encoding and images:
            self._encode_distinct_images(inputs, images)
        mask = inputs["attention_mask"]
        last = mask.sum(dim=1) - 1
        keep = torch.unique(last)
        out = self.model(**inputs, logits_to_keep=keep, use_cache=False)
        col = torch.searchsorted(keep, last)
        logits = out.logits[torch.arange(len(requests), device=self.device), col].float()
        return torch.log_softmax(logits, dim=-1).cpu(), [int(n) for n in mask.sum(dim=1).tolist()]

    def _encode_distinct_images(self, inputs: dict, images: list[np.ndarray]) -> None:
        """Run the vision encoder once per distinct image; replace pixel_values by mm_encoder_outputs."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        hashes = [image_hash(im) for im in images]
        first = {h: i for i, h in reversed(list(enumerate(hashes)))}
        uniq = sorted(first.values())
        if len(uniq) == len(images):
            return  # nothing shared
        pv = inputs["pixel_values"]
        grid = inputs.get("image_grid_thw")
        if pv.shape[0] == len(images):  # one row per image (LLaVA-style)
            pv_u = pv[uniq]
        elif grid is not None and int(grid.prod(dim=-1).sum()) == pv.shape[0]:  # flattened patches (Qwen-VL)
            chunks = pv.split(grid.prod(dim=-1).tolist())
            pv_u = torch.cat([chunks[i] for i in uniq])
        else:
            return  # unknown layout: leave the model to encode every image
        kwargs = {"pixel_values": pv_u, "return_dict": True}
        for key in ("image_grid_thw", "image_sizes"):
            if key in inputs:
                kwargs[key] = inputs[key][uniq]
        cfg = self.model.config
        for key in ("vision_feature_layer", "vision_feature_select_strategy"):
            if hasattr(cfg, key):
                kwargs[key] = getattr(cfg, key)
        feats = list(self.model.get_image_features(**kwargs).pooler_output)
        row = {i: n for n, i in enumerate(uniq)}
        inputs.pop("pixel_values")
        inputs["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(
            pooler_output=[feats[row[first[h]]] for h in hashes])}

    @torch.inference_mode()
    def generate(self, req: TextRequest) -> GeneratedText:
        """Greedy reply of at most req.max_tokens tokens to the images (in order) and text."""
        content = [{"type": "image"} for _ in req.images] + [{"type": "text", "text": req.text}]
        chat = self.processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True,
                                                  tokenize=False)
        inputs = self.processor(text=[chat], images=[Image.fromarray(im) for im in req.images] or None,
                                return_tensors="pt")
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(_DTYPES[self.config.dtype])
        n_in = int(inputs["input_ids"].shape[1])
        out = self.model.generate(**inputs, max_new_tokens=req.max_tokens, do_sample=False,
                                  pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        new = out[0, n_in:]
        return GeneratedText(self.tokenizer.decode(new, skip_special_tokens=True).strip(), n_in, int(new.numel()))

    def score(self, requests: Sequence[PromptRequest], top_k: int = 0) -> list[NextToken]:
        """Next-token log-probabilities; image and text-only requests go in separate batches."""
        results: list = [None] * len(requests)
        groups = [[i for i, r in enumerate(requests) if r.image is not None],
                  [i for i, r in enumerate(requests) if r.image is None]]
        bs = self.config.max_batch_size
        for group in groups:
            for start in range(0, len(group), bs):
                idx = group[start:start + bs]
                logp, n_in = self._forward([requests[i] for i in idx])
                for row, i in enumerate(idx):
                    results[i] = self._result(requests[i], logp[row], n_in[row], top_k)
        return results

    def _result(self, req: PromptRequest, logp: torch.Tensor, n_in: int, top_k: int) -> NextToken:
        cand = np.array([torch.logsumexp(logp[self.label_token_ids(c, req.casefold)], dim=0).item()
                         for c in req.candidates], dtype=np.float64)
        k = max(1, min(top_k, logp.shape[0]))
        values, ids = torch.topk(logp, k)
        top = [(self.tokenizer.decode([int(t)]), float(v)) for v, t in zip(values, ids)]
        return NextToken(candidate_logprobs=cand, top=top[:top_k], greedy=top[0], tokens_in=n_in, tokens_out=1)


BACKEND = Backend("hf", HFConfig, build=lambda settings, cache, visual_prompt: PromptedVLM(
    HFScorer(settings), cache, visual_prompt), serve=HFScorer, writes_text=True)

"""The local diffusers backend: a text-to-image pipeline loaded once and reused.

The model is a local diffusers folder (with `model_index.json`) or a Hugging Face hub id.
Loading never hangs on a network that is not there: local folders and hub ids already in the
Hugging Face cache load with `local_files_only=True`; an uncached hub id fails at once with one
line when HF_HUB_OFFLINE is set or the hub cannot be reached (a 3 s connect probe), and is
downloaded otherwise.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import re
import socket
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field

from stage5cli.errors import Stage5Error, UsageError
from stage5cli.images.base import ImageBackend, ImageRequest, ImageResult, one_line

MODEL_ENV = "STAGE5_DIFFUSERS_MODEL"
EXTRA_HINT = "the diffusers backend needs the extra: pip install 'stage5[diffusers]'"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_TRUE = {"1", "true", "yes", "on"}

# A1111-style sampler names -> (diffusers scheduler class, extra config)
SAMPLERS: dict[str, tuple[str, dict]] = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "plms": ("PNDMScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpmpp_sde": ("DPMSolverSinglestepScheduler", {}),
}
_DEFAULT_SAMPLERS = {"", "default", "auto", "pipeline"}


def normalize_sampler(name: str | None) -> str:
    s = (name or "").strip().lower().replace("++", "pp").replace("+", "p")
    return re.sub(r"[\s\-]+", "_", s)


def hf_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def looks_like_path(model: str) -> bool:
    """A folder/file path rather than a hub id ("org/name")."""
    if model.startswith(("/", "./", "../", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", model):
        return True
    return Path(model).expanduser().exists() or not _HUB_ID.match(model)


def pick_device(preferred: str | None = None) -> str:
    import torch

    if preferred:
        return preferred
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _dtype_kwarg() -> str:
    """diffusers renamed from_pretrained(torch_dtype=) to dtype= (0.36+ warns on the old name)."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def _read_index(path: Path, model: str) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"unreadable model_index.json for {model}: {one_line(exc)}") from None


def hub_unreachable(timeout: float = 3.0) -> tuple[str, str | None]:
    """(hub host, why it cannot be reached or None). Behind a proxy, assume reachable."""
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return host, None
    try:
        port = url.port or (443 if url.scheme == "https" else 80)
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        return host, (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    return host, None


class DiffusersBackend(ImageBackend):
    backend_id = "diffusers"
    description = "local GPU/CPU generation with a diffusers text-to-image pipeline"

    class Options(ImageBackend.Options):
        device: str | None = None  # cuda | mps | cpu (default: the best available)
        dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
        # images per pipeline call for same-size assets (None: from the device, see batch_size)
        batch_size: int | None = Field(default=None, ge=1, le=64)

    def __init__(self, options: DiffusersBackend.Options | None = None):
        super().__init__(options)
        self.pipe = None
        self.device: str | None = None
        self.load_count = 0  # how many times a pipeline was loaded (tests, benchmark)
        self._schedulers: dict[str, object] = {}
        self._default_scheduler = None
        self._budget = None

    # -- identity ---------------------------------------------------------------------------

    def model_ref(self) -> str | None:
        return self.options.model or os.environ.get(MODEL_ENV) or None

    def model_name(self) -> str:
        return self.model_ref() or "(no model)"

    def estimate_cost(self, req: ImageRequest) -> float | None:
        return 0.0

    # -- how the model reads text ------------------------------------------------------------

    TOKENIZER_KEYS = ("tokenizer", "tokenizer_2", "tokenizer_3")

    def text_budget(self):
        """From the pipeline's own tokenizer(s) and their `model_max_length` (loaded alone from
        the model folder when the pipeline is not loaded yet): a CLIP window for SD 1.x/2.x and
        SDXL, the T5 window for SD3/FLUX. A pipeline without a tokenizer is refused."""
        if self._budget is None:
            from .budget import pipeline_budget

            if self.pipe is not None:
                toks = {k: t for k in self.TOKENIZER_KEYS
                        if (t := getattr(self.pipe, k, None)) is not None}
            else:
                toks = self._load_tokenizers()
            budget = pipeline_budget(toks, self._max_sequence_length())
            if budget is None:
                raise UsageError(
                    f"diffusers model {self.model_name()} has no tokenizer (model_index.json "
                    "names none): stage5 cannot size prompts for it; use a complete pipeline "
                    "folder (save_pretrained) with its tokenizer/")
            self._budget = budget
        return self._budget

    def _max_sequence_length(self) -> int | None:
        """The pipeline's default `max_sequence_length` (T5 pipelines), when it is loaded."""
        if self.pipe is None:
            return None
        p = inspect.signature(self.pipe.__call__).parameters.get("max_sequence_length")
        return p.default if p is not None and isinstance(p.default, int) else None

    def _load_tokenizers(self) -> dict:
        self.check()
        ref = self.model_ref()
        assert ref is not None
        model, index, local_only = self._resolve(ref)
        keys = [k for k in self.TOKENIZER_KEYS
                if isinstance(index.get(k), list) and any(index[k])]
        if not keys:
            return {}
        from transformers import AutoTokenizer
        from transformers.utils import logging as tlogging

        toks = {}
        tlogging.disable_progress_bar()
        try:
            for k in keys:
                try:
                    toks[k] = AutoTokenizer.from_pretrained(model, subfolder=k,
                                                            local_files_only=local_only)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise UsageError(
                        f"diffusers model {ref}: cannot load its {k} ({one_line(exc, 160)}); "
                        f"stage5 needs the pipeline's tokenizer to size prompts") from None
        finally:
            tlogging.enable_progress_bar()
        return toks

    def batch_size(self) -> int:
        """--batch-size, else 1 on CPU (no gain there), 4 on CUDA, 2 on Apple MPS."""
        if self.options.batch_size:
            return self.options.batch_size
        return {"cuda": 4, "mps": 2}.get((self.device or "cpu").split(":")[0], 1)

    # -- checks -----------------------------------------------------------------------------

    def check(self) -> None:
        for mod in ("torch", "diffusers", "transformers"):
            if importlib.util.find_spec(mod) is None:
                raise UsageError(EXTRA_HINT)
        model = self.model_ref()
        if not model:
            raise UsageError(
                "the diffusers backend needs a model: pass --model DIR_OR_HUB_ID "
                f"or set {MODEL_ENV}"
            )
        if looks_like_path(model):
            folder = Path(model).expanduser()
            if not folder.exists():
                raise UsageError(
                    f"diffusers model folder not found: {model} (pass --model DIR or set {MODEL_ENV})"
                )
            if not (folder / "model_index.json").is_file():
                raise UsageError(
                    f"not a diffusers model folder (no model_index.json): {model}; "
                    f"pass a folder saved with save_pretrained() or a hub id with --model / {MODEL_ENV}"
                )
        elif hf_offline() and self._cached_index(model) is None:
            raise UsageError(
                f"diffusers model {model} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                f"is set; download it first (hf download {model}) or pass a local folder with "
                f"--model / {MODEL_ENV}"
            )

    @staticmethod
    def _cached_index(repo_id: str) -> str | None:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - comes with diffusers
            return None
        found = try_to_load_from_cache(repo_id, "model_index.json")
        return found if isinstance(found, str) else None

    def _resolve(self, model: str) -> tuple[str, dict, bool]:
        """(what to pass to from_pretrained, its model_index.json, local_files_only).

        A hub id already in the local cache loads from the cache (fast, offline, the same
        revision every run). Otherwise the hub is probed once with a short connect, so a
        machine without network gets one line at once instead of huggingface_hub's retries."""
        if looks_like_path(model):
            folder = Path(model).expanduser()
            return str(folder), _read_index(folder / "model_index.json", model), True
        cached = self._cached_index(model)
        if cached is not None:
            return model, _read_index(Path(cached), model), True
        if hf_offline():
            self.check()  # raises the offline message
        endpoint, reason = hub_unreachable()
        if reason:
            raise UsageError(
                f"diffusers model {model} is not in the local Hugging Face cache and {endpoint} "
                f"cannot be reached ({reason}); download it where there is network "
                f"(hf download {model}) or pass a local folder with --model / {MODEL_ENV}"
            )
        from huggingface_hub import hf_hub_download

        try:
            path = Path(hf_hub_download(model, "model_index.json"))
        except Exception as exc:  # one line whatever the hub says
            raise UsageError(
                f"cannot find diffusers model {model} on {endpoint}: {one_line(exc, 160)}; "
                f"pass a local folder or another hub id with --model / {MODEL_ENV}"
            ) from None
        return model, _read_index(path, model), False

    # -- loading (once) ---------------------------------------------------------------------

    def _dtype(self, torch, device: str):
        if self.options.dtype != "auto":
            return getattr(torch, self.options.dtype)
        return torch.float16 if device == "cuda" else torch.float32

    def setup(self) -> None:
        self.check()
        import torch
        from diffusers import AutoPipelineForText2Image
        from diffusers.utils import logging as dlogging
        from transformers.utils import logging as tlogging

        ref = self.model_ref()
        assert ref is not None
        model, index, local_only = self._resolve(ref)
        device = pick_device(self.options.device)
        kwargs: dict = {_dtype_kwarg(): self._dtype(torch, device)}
        if local_only:
            kwargs["local_files_only"] = True
        if "safety_checker" in index:
            kwargs["safety_checker"] = None
            kwargs["requires_safety_checker"] = False
        dlogging.disable_progress_bar()
        tlogging.disable_progress_bar()
        try:
            pipe = AutoPipelineForText2Image.from_pretrained(model, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"cannot load diffusers model {model}: {one_line(exc, 200)}") from None
        finally:
            dlogging.enable_progress_bar()
            tlogging.enable_progress_bar()
        try:
            pipe = pipe.to(device)
        except (RuntimeError, AssertionError) as exc:
            raise Stage5Error(f"cannot move the pipeline to {device}: {one_line(exc)}") from None
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe
        self.device = device
        self._default_scheduler = pipe.scheduler
        self._schedulers = {}
        self.load_count += 1

    def close(self) -> None:
        self.pipe = None
        self._schedulers = {}
        self._default_scheduler = None
        super().close()

    # -- generation -------------------------------------------------------------------------

    def _scheduler_for(self, sampler: str, info: dict):
        name = normalize_sampler(sampler)
        if name in _DEFAULT_SAMPLERS:
            return self._default_scheduler
        if name not in SAMPLERS:
            info["sampler_note"] = f"unknown sampler {sampler!r}; used the pipeline's default"
            return self._default_scheduler
        if name not in self._schedulers:
            import diffusers

            cls_name, extra = SAMPLERS[name]
            cls = getattr(diffusers, cls_name)
            self._schedulers[name] = cls.from_config(self._default_scheduler.config, **extra)
        return self._schedulers[name]

    def _call_params(self) -> set[str] | None:
        """Keyword arguments the pipeline's __call__ accepts (None: it takes **kwargs)."""
        params = inspect.signature(self.pipe.__call__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        return set(params)

    def _vae_factor(self) -> int:
        return int(getattr(self.pipe, "vae_scale_factor", 8) or 8)

    def _call(self, reqs: list[ImageRequest]) -> tuple[list, dict]:
        """One pipeline call for requests that share size and sampling setup."""
        import torch

        pipe = self.pipe
        first = reqs[0]
        info: dict = {}
        pipe.scheduler = self._scheduler_for(first.sampler, info)
        info["scheduler"] = type(pipe.scheduler).__name__
        # diffusion models need sides divisible by the VAE factor: round up, crop back later
        f = self._vae_factor()
        gw, gh = math.ceil(first.width / f) * f, math.ceil(first.height / f) * f
        gen_device = "cpu" if self.device == "mps" else self.device
        generators = [torch.Generator(device=gen_device).manual_seed(r.seed) for r in reqs]
        one = len(reqs) == 1
        negatives = [r.negative_prompt for r in reqs]
        kwargs = {
            "prompt": first.prompt if one else [r.prompt for r in reqs],
            "negative_prompt": (negatives[0] or None) if one else (
                negatives if all(negatives) else None),
            "width": gw,
            "height": gh,
            "num_inference_steps": max(1, int(first.steps)),
            "guidance_scale": float(first.guidance),
            "generator": generators[0] if one else generators,
            "num_images_per_prompt": 1,
        }
        budget = self._budget
        if budget is not None and budget.long_prompt == "t5" and budget.limit:
            kwargs["max_sequence_length"] = budget.limit
        accepted = self._call_params()
        if accepted is not None:
            dropped = sorted(k for k in kwargs if k not in accepted)
            for k in dropped:
                del kwargs[k]
            if dropped:
                info["unsupported_by_pipeline"] = dropped
        with torch.inference_mode():
            out = pipe(**kwargs)
        images = list(getattr(out, "images", None) or [])
        info["device"] = self.device
        if (gw, gh) != (first.width, first.height):
            info["generated_size"] = [gw, gh]
        return images, info

    def generate_one(self, req: ImageRequest) -> ImageResult:
        images, info = self._call([req])
        if not images:
            return ImageResult(req.key, None, error="pipeline returned no image", info=info)
        return ImageResult(req.key, images[0], cost_usd=0.0, info=info)

    def generate_many(self, reqs: list[ImageRequest]) -> list[ImageResult]:
        """One pipeline call for the chunk: a list of prompts and one torch.Generator per
        image (seeded from its request), so each image is the one its seed gives."""
        images, info = self._call(reqs)
        if len(images) != len(reqs):
            raise Stage5Error(f"pipeline returned {len(images)} images for {len(reqs)} prompts")
        return [ImageResult(r.key, im, cost_usd=0.0, info=dict(info))
                for r, im in zip(reqs, images, strict=True)]

"""Build a tiny random-weight Stable Diffusion pipeline from configs (no downloads).

The shapes follow diffusers' own fast tests (`get_dummy_components`: cross-attention width 32,
a five-layer CLIP text encoder of width 32). The tokenizer is the real CLIP BPE tokenizer
(49408 tokens, 77-token window; rebuilt from the merges in prompts/clip by tests/clip_vocab.py),
so prompts are measured exactly as Stable Diffusion measures them. Two choices keep the real table sizes cheap on a 2-core CPU (measured): the VAE has
four levels, so its scale factor is 8 as in real SD checkpoints (a 512x768 request denoises a
64x96 latent), with 4/8 channels and no mid-block attention; the UNet has three levels
(16/32/32) with cross-attention only at the lowest resolution, about 5x faster per step than
diffusers' two-level (32, 64) test UNet at these sizes.
Used by tests/test_images_diffusers.py and benchmarks/generate.py.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_pipeline(seed: int = 0):
    """Return an in-memory StableDiffusionPipeline with tiny random weights."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(4, 4, 8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=4,
        mid_block_add_attention=False,
        sample_size=64,
    )
    torch.manual_seed(seed)
    text_config = CLIPTextConfig(
        bos_token_id=49406,
        eos_token_id=49407,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=49407,
        vocab_size=49408,
    )
    text_encoder = CLIPTextModel(text_config)
    from tests.clip_vocab import BOS, EOS, clip_vocab

    vocab, merges = clip_vocab()
    tokenizer = CLIPTokenizer(vocab=dict(vocab), merges=[tuple(m.split()) for m in merges],
                              model_max_length=77, bos_token=BOS, eos_token=EOS, unk_token=EOS,
                              pad_token=EOS)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    return StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def save_tiny_pipeline(folder: Path, seed: int = 0) -> Path:
    """Build the tiny pipeline and `save_pretrained` it to `folder` (a model folder)."""
    pipe = build_tiny_pipeline(seed)
    pipe.save_pretrained(str(folder))
    return folder

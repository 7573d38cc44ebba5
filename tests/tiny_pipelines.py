"""Tiny, seeded diffusers pipelines built from configs, for tests (no model hub, CPU in well under a second).

Every factory seeds torch before building weights, so two calls with the same ``seed`` give identical
pipelines. All run on CPU in float32 with the progress bar off.

    tiny_ddpm_pipeline()      DDPMPipeline, 1x8x8 pixels, DDPMScheduler
    tiny_ddim_pipeline()      DDIMPipeline, 1x8x8 pixels, DDIMScheduler
    tiny_sd_pipeline()        StableDiffusionPipeline, 16x16 RGB images, 4x8x8 latents (VAE factor 2)
    tiny_sd3_pipeline()       StableDiffusion3Pipeline, 8x8 RGB images, 4x8x8 latents (VAE factor 1),
                              FlowMatchEulerDiscreteScheduler, two CLIP encoders, no T5 (zeros instead)
    tiny_flux_pipeline()      FluxPipeline, 8x8 RGB images, 1x8x8 latents packed to [B, 16, 4],
                              FlowMatchEulerDiscreteScheduler, CLIP + tiny T5

Import from any test module: ``from tiny_pipelines import tiny_sd_pipeline`` (``tests/conftest.py`` puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import string

import torch
from diffusers import (
    AutoencoderKL,
    DDIMPipeline,
    DDIMScheduler,
    DDPMPipeline,
    DDPMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
    UNet2DModel,
)
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
)

# Stable Diffusion v1's training schedule (what `from_config` on the hub's scheduler_config.json gives).
SD_SCHEDULER_CONFIG = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}

# Image sizes the factories are built for; pass them as height/width.
SD_IMAGE_SIZE = 16  # 8x8 latents
SD3_IMAGE_SIZE = 8  # 8x8 latents
FLUX_IMAGE_SIZE = 8  # 8x8 latents, packed into 4x4 tokens of 2x2 patches


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_unet2d(seed: int = 0) -> UNet2DModel:
    """An unconditional UNet2DModel on 1x8x8 images (about 0.5M parameters)."""
    torch.manual_seed(seed)
    return UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=1,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=32,
    ).eval()


def tiny_ddpm_pipeline(seed: int = 0) -> DDPMPipeline:
    """DDPMPipeline on 1x8x8 pixel images with a default DDPMScheduler (1000 training steps)."""
    return _quiet(DDPMPipeline(unet=tiny_unet2d(seed), scheduler=DDPMScheduler()))


def tiny_ddim_pipeline(seed: int = 0) -> DDIMPipeline:
    """DDIMPipeline on 1x8x8 pixel images with a default DDIMScheduler."""
    return _quiet(DDIMPipeline(unet=tiny_unet2d(seed), scheduler=DDIMScheduler()))


def tiny_clip_tokenizer() -> CLIPTokenizer:
    """A CLIP BPE tokenizer over single letters (ids < 60), built in memory."""
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in string.ascii_lowercase:
        vocab[letter] = len(vocab)
        vocab[letter + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


def tiny_t5_tokenizer() -> T5Tokenizer:
    """A T5 unigram tokenizer over single letters (ids < 40), built in memory."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    pieces += [(letter, -3.0) for letter in string.ascii_lowercase]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def _tiny_clip_config(**extra) -> CLIPTextConfig:
    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
        **extra,
    )


def tiny_t5_config() -> T5Config:
    """A two-layer T5 encoder config (d_model 32, vocabulary 1000)."""
    return T5Config(d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, vocab_size=1000, decoder_start_token_id=0)


def tiny_vae(seed: int | None = None) -> AutoencoderKL:
    """The tiny Stable Diffusion VAE: RGB -> 4 latent channels, downsampling by 2 (seeded when given)."""
    if seed is not None:
        torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=[32, 64],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4,
    ).eval()


def _tiny_flow_vae(sample_size: int, latent_channels: int, seed: int) -> AutoencoderKL:
    """The tiny VAE of the SD3 and Flux pipelines: no downsampling, no quant convs, SD3's shift and scale."""
    torch.manual_seed(seed)
    return AutoencoderKL(
        sample_size=sample_size,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    ).eval()


def _make_scheduler(scheduler, config: dict, default):
    if scheduler is None:
        return default.from_config(config)
    if isinstance(scheduler, type):
        return scheduler.from_config(config)
    return scheduler


def tiny_sd_pipeline(scheduler=None, seed: int = 0) -> StableDiffusionPipeline:
    """StableDiffusionPipeline with 16x16 RGB images and 4x8x8 latents.

    Parameters:
        scheduler: a scheduler instance, a scheduler class (configured from :data:`SD_SCHEDULER_CONFIG`),
            or None for DDIMScheduler.
        seed: torch seed for the weights.

    Call it with ``height=width=SD_IMAGE_SIZE``.
    """
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=SD_IMAGE_SIZE // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        norm_num_groups=32,
    ).eval()
    torch.manual_seed(seed)
    vae = tiny_vae()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_tiny_clip_config()).eval()
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        unet=unet,
        scheduler=_make_scheduler(scheduler, SD_SCHEDULER_CONFIG, DDIMScheduler),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return _quiet(pipe)


def tiny_sd3_pipeline(scheduler=None, seed: int = 0) -> StableDiffusion3Pipeline:
    """StableDiffusion3Pipeline with 8x8 RGB images and 4x8x8 latents (VAE factor 1, patch size 1).

    One transformer layer, two tiny CLIP encoders with projections, no T5 (the pipeline then feeds zeros
    in its place). ``scheduler``: instance, class, or None for FlowMatchEulerDiscreteScheduler(shift=3).
    Call it with ``height=width=SD3_IMAGE_SIZE``.
    """
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=SD3_IMAGE_SIZE,
        patch_size=1,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_projection_dim=32,
        joint_attention_dim=32,
        pooled_projection_dim=64,
        out_channels=4,
    ).eval()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModelWithProjection(_tiny_clip_config(hidden_act="gelu", projection_dim=32)).eval()
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_clip_config(hidden_act="gelu", projection_dim=32)).eval()
    vae = _tiny_flow_vae(SD3_IMAGE_SIZE, latent_channels=4, seed=seed)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer,
        scheduler=_make_scheduler(scheduler, {"shift": 3.0}, FlowMatchEulerDiscreteScheduler),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        text_encoder_2=text_encoder_2,
        tokenizer_2=tiny_clip_tokenizer(),
        text_encoder_3=None,
        tokenizer_3=None,
    )
    return _quiet(pipe)


def tiny_flux_pipeline(scheduler=None, seed: int = 0) -> FluxPipeline:
    """FluxPipeline with 8x8 RGB images; its 1x8x8 latents are packed to ``[B, 16, 4]`` during sampling.

    One double and one single transformer block, a tiny CLIP and a tiny two-layer T5. ``scheduler``:
    instance, class, or None for FlowMatchEulerDiscreteScheduler(). Call it with
    ``height=width=FLUX_IMAGE_SIZE``; unpack recorded latents with
    ``FluxPipeline._unpack_latents(x, FLUX_IMAGE_SIZE, FLUX_IMAGE_SIZE, pipe.vae_scale_factor)``.
    """
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    ).eval()
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(_tiny_clip_config(hidden_act="gelu", projection_dim=32)).eval()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(tiny_t5_config()).eval()
    vae = _tiny_flow_vae(FLUX_IMAGE_SIZE, latent_channels=1, seed=seed)
    pipe = FluxPipeline(
        transformer=transformer,
        scheduler=_make_scheduler(scheduler, {}, FlowMatchEulerDiscreteScheduler),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tiny_clip_tokenizer(),
        text_encoder_2=text_encoder_2,
        tokenizer_2=tiny_t5_tokenizer(),
    )
    return _quiet(pipe)

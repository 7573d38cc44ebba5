"""Tiny, seeded pipelines of the diffusers families beyond ``tiny_pipelines``, built from configs.

Shapes follow the ``get_dummy_components()`` of diffusers' own tests, shrunk where CPU time asks for it;
tokenizers and text encoders are built in memory. Each factory returns the pipeline and the keyword
arguments of one small call (2 inference steps, a few pixels), so a test runs ``pipe(**call)``.

    dit()                 DiTPipeline: class-conditional, guidance-doubled scheduler steps, AutoencoderKL
    ldm_text2img()        LDMTextToImagePipeline: ``vqvae`` (an AutoencoderKL), latents of height // 8
    ldm_unconditional()   LDMPipeline: ``vqvae`` VQModel, scaled latents
    kandinsky22()         KandinskyV22Pipeline: ``movq`` VQModel, unscaled latents, image embeddings in
    kandinsky22_prior()   KandinskyV22PriorPipeline: text to image embeddings (refused: no images)
    kandinsky22_combined()  KandinskyV22CombinedPipeline: that prior, then that decoder
    kandinsky3()          Kandinsky3Pipeline: ``movq`` VQModel, T5 text encoder
    wuerstchen()          WuerstchenDecoderPipeline: ``vqgan`` PaellaVQModel, DDPMWuerstchenScheduler
    stable_cascade()      StableCascadeDecoderPipeline: ``vqgan`` PaellaVQModel, DDPMWuerstchenScheduler
    sana(), sana_binned() SanaPipeline: AutoencoderDC, Gemma2 text encoder, flow matching; binning off / on
    qwenimage()           QwenImagePipeline: AutoencoderKLQwenImage (5-D latents), packed latents
    pixart()              PixArtAlphaPipeline with resolution binning (sample_size 32: the 256 px bins)
    hunyuan_dit()         HunyuanDiTPipeline: BERT + T5 text encoders
    sd_tiny_autoencoder() StableDiffusionPipeline whose ``vae`` is an AutoencoderTiny
    sdxl(), lcm(), deepfloyd_if()   StableDiffusionXLPipeline, LatentConsistencyModelPipeline, IFPipeline

The autoencoders alone: ``tiny_kl``, ``tiny_vq``, ``tiny_dc``, ``tiny_paella``, ``tiny_qwen_vae``.
"""

from __future__ import annotations

import string

import torch
from diffusers import (
    AutoencoderDC,
    AutoencoderKL,
    AutoencoderKLQwenImage,
    AutoencoderTiny,
    DDIMScheduler,
    DDPMScheduler,
    DDPMWuerstchenScheduler,
    DiTPipeline,
    DiTTransformer2DModel,
    FlowMatchEulerDiscreteScheduler,
    Kandinsky3Pipeline,
    Kandinsky3UNet,
    KandinskyV22Pipeline,
    LDMPipeline,
    LDMTextToImagePipeline,
    PixArtAlphaPipeline,
    PixArtTransformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    SanaPipeline,
    SanaTransformer2DModel,
    StableCascadeDecoderPipeline,
    StableCascadeUNet,
    UNet2DConditionModel,
    UNet2DModel,
    VQModel,
    WuerstchenDecoderPipeline,
)
from diffusers.pipelines.deprecated.wuerstchen import PaellaVQModel, WuerstchenDiffNeXt
from transformers import (
    CLIPTextModel,
    CLIPTextModelWithProjection,
    Gemma2Config,
    Gemma2Model,
    GemmaTokenizer,
    T5EncoderModel,
)

from tiny_pipelines import _quiet, _tiny_clip_config, tiny_clip_tokenizer, tiny_t5_config, tiny_t5_tokenizer, tiny_vae

Call = dict


def _seeded(seed: int, build):
    torch.manual_seed(seed)
    return build().eval()


def dit(seed: int = 0) -> tuple[DiTPipeline, Call]:
    """DiTPipeline on 4x8x8 latents (16x16 images) with guidance 4: its scheduler steps the doubled batch."""
    transformer = _seeded(seed, lambda: DiTTransformer2DModel(
        sample_size=8, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=2, in_channels=4,
        out_channels=8, attention_bias=True, activation_fn="gelu-approximate", num_embeds_ada_norm=1000,
        norm_type="ada_norm_zero", norm_elementwise_affine=False,
    ))
    pipe = DiTPipeline(transformer=transformer, vae=tiny_vae(seed), scheduler=DDIMScheduler())
    return _quiet(pipe), dict(class_labels=[1, 2], num_inference_steps=2)


def ldm_text2img(seed: int = 0) -> tuple[LDMTextToImagePipeline, Call]:
    """LDMTextToImagePipeline with an AutoencoderKL ``vqvae`` (factor 2): height 64 gives 8x8 latents
    (the pipeline divides by 8) and 16x16 images."""
    unet = _seeded(seed, lambda: UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
    ))
    bert = _seeded(seed, lambda: CLIPTextModel(_tiny_clip_config()))
    pipe = LDMTextToImagePipeline(
        vqvae=tiny_vae(seed), bert=bert, tokenizer=tiny_clip_tokenizer(), unet=unet,
        scheduler=DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                                set_alpha_to_one=False),
    )
    return _quiet(pipe), dict(prompt="a cat", height=64, width=64, guidance_scale=6.0, num_inference_steps=2)


def tiny_vq(seed: int = 0, **extra) -> VQModel:
    """A VQModel RGB -> 4 latent channels, downsampling by 2 (diffusers' Kandinsky test ``movq``)."""
    config = dict(
        block_out_channels=[32, 64], down_block_types=["DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
        in_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8, norm_type="spatial",
        num_vq_embeddings=12, out_channels=3, up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
    )
    return _seeded(seed, lambda: VQModel(**(config | extra)))


def ldm_unconditional(seed: int = 0) -> tuple[LDMPipeline, Call]:
    """LDMPipeline (unconditional) on 3x8x8 VQModel latents, 16x16 images."""
    vqvae = _seeded(seed, lambda: VQModel(
        block_out_channels=[32, 64], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=3,
    ))
    unet = _seeded(seed, lambda: UNet2DModel(
        sample_size=8, in_channels=3, out_channels=3, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
    ))
    return _quiet(LDMPipeline(vqvae=vqvae, unet=unet, scheduler=DDIMScheduler())), dict(batch_size=2, num_inference_steps=2)


def kandinsky22(seed: int = 0) -> tuple[KandinskyV22Pipeline, Call]:
    """KandinskyV22Pipeline (the decoder): 16x16 images from 4x8x8 ``movq`` latents, given image embeddings."""
    unet = _seeded(seed, lambda: UNet2DConditionModel(
        in_channels=4, out_channels=8, addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"), mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64), layers_per_block=1, encoder_hid_dim=32, encoder_hid_dim_type="image_proj",
        cross_attention_dim=32, attention_head_dim=4, resnet_time_scale_shift="scale_shift", class_embed_type=None,
    ))
    scheduler = DDIMScheduler(
        beta_schedule="linear", beta_start=0.00085, beta_end=0.012, clip_sample=False, set_alpha_to_one=False,
        steps_offset=1, prediction_type="epsilon", thresholding=False,
    )
    pipe = KandinskyV22Pipeline(unet=unet, scheduler=scheduler, movq=tiny_vq(seed))
    generator = torch.Generator().manual_seed(seed)
    embeds = torch.rand(2, 32, generator=generator)
    call = dict(image_embeds=embeds, negative_image_embeds=torch.rand(2, 32, generator=generator), height=16, width=16,
                guidance_scale=4.0, num_inference_steps=2)
    return _quiet(pipe), call


def kandinsky3(seed: int = 0) -> tuple[Kandinsky3Pipeline, Call]:
    """Kandinsky3Pipeline: 16x16 images from 4x8x8 ``movq`` latents, a tiny T5 text encoder."""
    unet = _seeded(seed, lambda: Kandinsky3UNet(
        in_channels=4, time_embedding_dim=4, groups=2, attention_head_dim=4, layers_per_block=3,
        block_out_channels=(32, 64), cross_attention_dim=4, encoder_hid_dim=32,
    ))
    scheduler = DDPMScheduler(
        beta_start=0.00085, beta_end=0.012, steps_offset=1, beta_schedule="squaredcos_cap_v2", clip_sample=True,
        thresholding=False,
    )
    text_encoder = _seeded(seed, lambda: T5EncoderModel(tiny_t5_config()))
    pipe = Kandinsky3Pipeline(unet=unet, scheduler=scheduler, movq=tiny_vq(seed), text_encoder=text_encoder,
                              tokenizer=tiny_t5_tokenizer())
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, guidance_scale=6.0, num_inference_steps=2)


def tiny_paella(seed: int = 0) -> PaellaVQModel:
    """PaellaVQModel RGB in [0, 1] -> 4 latent channels, downsampling by 4 (diffusers' test ``vqgan``)."""
    return _seeded(seed, lambda: PaellaVQModel(bottleneck_blocks=1, num_vq_embeddings=2, embed_dim=32))


def _clip_with_projection(seed: int) -> CLIPTextModelWithProjection:
    return _seeded(seed, lambda: CLIPTextModelWithProjection(_tiny_clip_config(projection_dim=32)))


def wuerstchen(seed: int = 0) -> tuple[WuerstchenDecoderPipeline, Call]:
    """WuerstchenDecoderPipeline: 4x8x8 latents (32x32 images) from 4x2x2 image embeddings."""
    decoder = _seeded(seed, lambda: WuerstchenDiffNeXt(
        c_cond=32, c_hidden=[32], nhead=[-1], blocks=[2], level_config=["CT"], clip_embd=32, inject_effnet=[False],
    ))
    text_encoder = _seeded(seed, lambda: CLIPTextModel(_tiny_clip_config(projection_dim=32)))
    pipe = WuerstchenDecoderPipeline(
        tokenizer=tiny_clip_tokenizer(), text_encoder=text_encoder, decoder=decoder, scheduler=DDPMWuerstchenScheduler(),
        vqgan=tiny_paella(seed), latent_dim_scale=4.0,
    )
    embeddings = torch.ones(1, 4, 2, 2)
    return _quiet(pipe), dict(image_embeddings=embeddings, prompt="a cat", guidance_scale=1.0, num_inference_steps=2)


def stable_cascade(seed: int = 0) -> tuple[StableCascadeDecoderPipeline, Call]:
    """StableCascadeDecoderPipeline: 4x8x8 latents (32x32 images) from 4x2x2 image embeddings."""
    decoder = _seeded(seed, lambda: StableCascadeUNet(
        in_channels=4, out_channels=4, conditioning_dim=32, block_out_channels=[16, 32],
        num_attention_heads=[-1, 1], down_num_layers_per_block=[1, 1], up_num_layers_per_block=[1, 1],
        down_blocks_repeat_mappers=[1, 1], up_blocks_repeat_mappers=[1, 1],
        block_types_per_layer=[["SDCascadeResBlock", "SDCascadeTimestepBlock"]] * 2,
        switch_level=None, clip_text_pooled_in_channels=32, dropout=[0.0, 0.0],
    ))
    pipe = StableCascadeDecoderPipeline(
        decoder=decoder, tokenizer=tiny_clip_tokenizer(), text_encoder=_clip_with_projection(seed),
        scheduler=DDPMWuerstchenScheduler(), vqgan=tiny_paella(seed), latent_dim_scale=4.0,
    )
    embeddings = torch.ones(1, 4, 2, 2)
    return _quiet(pipe), dict(image_embeddings=embeddings, prompt="a cat", guidance_scale=2.0, num_inference_steps=2)


def sd_tiny_autoencoder(seed: int = 0):
    """StableDiffusionPipeline whose ``vae`` is an AutoencoderTiny (TAESD-like, downsampling by 2)."""
    from diffusers import StableDiffusionPipeline

    from tiny_pipelines import tiny_sd_pipeline

    vae = _seeded(seed, lambda: AutoencoderTiny(
        encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
        num_decoder_blocks=(1, 1), latent_channels=4,
    ))
    pipe = StableDiffusionPipeline(**(tiny_sd_pipeline(seed=seed).components | {"vae": vae}), requires_safety_checker=False)
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, num_inference_steps=2)


def tiny_gemma_tokenizer() -> GemmaTokenizer:
    """A Gemma BPE tokenizer over a few letters (ids < 8), built in memory."""
    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "a": 4, "c": 5, "t": 6, "\u2581": 7}
    return GemmaTokenizer(vocab=vocab, merges=[])


def tiny_dc(seed: int = 0, stages: int = 2) -> AutoencoderDC:
    """An AutoencoderDC RGB -> 4 latent channels, downsampling by ``2 ** (stages - 1)`` (diffusers' Sana test)."""
    blocks = ("ResBlock",) * (stages - 1) + ("EfficientViTBlock",)
    scales = ((),) * (stages - 1) + ((5,),)
    return _seeded(seed, lambda: AutoencoderDC(
        in_channels=3, latent_channels=4, attention_head_dim=2, encoder_block_types=blocks, decoder_block_types=blocks,
        encoder_block_out_channels=(8,) * stages, decoder_block_out_channels=(8,) * stages,
        encoder_qkv_multiscales=scales, decoder_qkv_multiscales=scales, encoder_layers_per_block=(1,) * stages,
        decoder_layers_per_block=[1] * stages, downsample_block_type="conv", upsample_block_type="interpolate",
        decoder_norm_types="rms_norm", decoder_act_fns="silu", scaling_factor=0.41407,
    ))


def sana(seed: int = 0) -> tuple[SanaPipeline, Call]:
    """SanaPipeline: 32x32 images, 4x8x8 AutoencoderDC latents (downsampling 4), flow matching (binning
    off: see :func:`sana_binned`)."""
    return _sana(seed, sample_size=8, stages=3), dict(
        prompt="a cat", negative_prompt="", height=32, width=32, guidance_scale=6.0, num_inference_steps=2,
        max_sequence_length=16, complex_human_instruction=None, use_resolution_binning=False,
    )


def sana_binned(seed: int = 0) -> tuple[SanaPipeline, Call]:
    """SanaPipeline with its default resolution binning: sample_size 16 bins to 512 px, sampled as 4x16x16
    AutoencoderDC latents (downsampling 32); a 32x32 request comes out resized from 512x512."""
    return _sana(seed, sample_size=16, stages=6), dict(
        prompt="a cat", negative_prompt="", height=32, width=32, guidance_scale=6.0, num_inference_steps=2,
        max_sequence_length=16, complex_human_instruction=None,
    )


def _sana(seed: int, *, sample_size: int, stages: int) -> SanaPipeline:
    transformer = _seeded(seed, lambda: SanaTransformer2DModel(
        patch_size=1, in_channels=4, out_channels=4, num_layers=1, num_attention_heads=2, attention_head_dim=4,
        num_cross_attention_heads=2, cross_attention_head_dim=4, cross_attention_dim=8, caption_channels=8,
        sample_size=sample_size,
    ))
    text_encoder = _seeded(seed, lambda: Gemma2Model(Gemma2Config(
        head_dim=16, hidden_size=8, initializer_range=0.02, intermediate_size=64, max_position_embeddings=8192,
        model_type="gemma2", num_attention_heads=2, num_hidden_layers=1, num_key_value_heads=2, vocab_size=8,
        attn_implementation="eager",
    )))
    pipe = SanaPipeline(
        tokenizer=tiny_gemma_tokenizer(), text_encoder=text_encoder, vae=tiny_dc(seed, stages), transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
    )
    return _quiet(pipe)


def tiny_qwen2_tokenizer():
    """A byte-level Qwen2 BPE tokenizer (the 256 byte symbols and ``<|endoftext|>``), built in memory."""
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    vocab = {symbol: i for i, symbol in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<|endoftext|>"] = len(vocab)
    return Qwen2Tokenizer(vocab=vocab, merges=[])


def tiny_qwen_vae(seed: int = 0) -> AutoencoderKLQwenImage:
    """An AutoencoderKLQwenImage RGB -> 4 latent channels, downsampling by 4 (diffusers' QwenImage test)."""
    return _seeded(seed, lambda: AutoencoderKLQwenImage(
        base_dim=24, z_dim=4, dim_mult=[1, 2, 4], num_res_blocks=1, temperal_downsample=[False, True],
        latents_mean=[0.1, -0.2, 0.3, 0.0], latents_std=[1.5, 0.5, 1.0, 2.0],
    ))


def qwenimage(seed: int = 0) -> tuple[QwenImagePipeline, Call]:
    """QwenImagePipeline: 32x32 images from 4x8x8 latents, packed to ``[B, 16, 16]`` while sampling."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    transformer = _seeded(seed, lambda: QwenImageTransformer2DModel(
        patch_size=2, in_channels=16, out_channels=4, num_layers=1, attention_head_dim=16, num_attention_heads=3,
        joint_attention_dim=16, guidance_embeds=False, axes_dims_rope=(8, 4, 4),
    ))
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 16, "intermediate_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 2, "rope_theta": 1000000.0,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
        },
        vision_config={"depth": 2, "hidden_size": 16, "intermediate_size": 16, "num_heads": 2, "out_hidden_size": 16},
        hidden_size=16, vocab_size=300, vision_end_token_id=290, vision_start_token_id=291, vision_token_id=292,
    )
    text_encoder = _seeded(seed, lambda: Qwen2_5_VLForConditionalGeneration(config))
    pipe = QwenImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=tiny_qwen_vae(seed), text_encoder=text_encoder,
        tokenizer=tiny_qwen2_tokenizer(), transformer=transformer,
    )
    return _quiet(pipe), dict(prompt="a cat", height=32, width=32, num_inference_steps=2, max_sequence_length=16)


def tiny_kl(seed: int = 0, blocks: int = 1) -> AutoencoderKL:
    """An AutoencoderKL RGB -> 4 latent channels with 8 channels per block, downsampling by ``2 ** (blocks - 1)``."""
    return _seeded(seed, lambda: AutoencoderKL(
        block_out_channels=(8,) * blocks, down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks, latent_channels=4, norm_num_groups=4, layers_per_block=1,
    ))


def pixart(seed: int = 0) -> tuple[PixArtAlphaPipeline, Call]:
    """PixArtAlphaPipeline with its default resolution binning: transformer sample_size 32 selects the 256 px
    bins, so a 32x32 request samples 4x32x32 latents (AutoencoderKL, downsampling 8) at 256x256 and comes
    out resized to 32x32."""
    transformer = _seeded(seed, lambda: PixArtTransformer2DModel(
        sample_size=32, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=3, caption_channels=32,
        in_channels=4, cross_attention_dim=24, out_channels=8, attention_bias=True, activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000, norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6,
    ))
    text_encoder = _seeded(seed, lambda: T5EncoderModel(tiny_t5_config()))
    pipe = PixArtAlphaPipeline(
        tokenizer=tiny_t5_tokenizer(), text_encoder=text_encoder, vae=tiny_kl(seed, blocks=4), transformer=transformer,
        scheduler=DDIMScheduler(),
    )
    return _quiet(pipe), dict(prompt="a cat", height=32, width=32, guidance_scale=5.0, num_inference_steps=2,
                              max_sequence_length=16, clean_caption=False)


def hunyuan_dit(seed: int = 0, vae_blocks: int | None = None) -> tuple:
    """HunyuanDiTPipeline: 16x16 images from 4x8x8 latents (binning off: it maps every size to 768 px or
    more); BERT and T5 text encoders. ``vae_blocks``: an AutoencoderKL of that many blocks instead (4
    downsample by 8, as the pipeline assumes: its binned 1024 px samples are 128x128 latents)."""
    from diffusers import HunyuanDiT2DModel, HunyuanDiTPipeline
    from transformers import BertConfig, BertModel, BertTokenizer

    transformer = _seeded(seed, lambda: HunyuanDiT2DModel(
        sample_size=8, num_layers=1, patch_size=2, attention_head_dim=8, num_attention_heads=3, in_channels=4,
        cross_attention_dim=32, cross_attention_dim_t5=32, pooled_projection_dim=16, hidden_size=24,
        activation_fn="gelu-approximate",
    ))
    bert = _seeded(seed, lambda: BertModel(BertConfig(
        vocab_size=40, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
        max_position_embeddings=128,
    )))
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase]
    pipe = HunyuanDiTPipeline(
        vae=tiny_vae(seed) if vae_blocks is None else tiny_kl(seed, vae_blocks), text_encoder=bert,
        tokenizer=BertTokenizer(vocab={w: i for i, w in enumerate(words)}),
        transformer=transformer, scheduler=DDPMScheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False, text_encoder_2=_seeded(seed, lambda: T5EncoderModel(tiny_t5_config())),
        tokenizer_2=tiny_t5_tokenizer(),
    )
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, guidance_scale=5.0, num_inference_steps=2,
                              use_resolution_binning=False)


def sdxl(seed: int = 0) -> tuple:
    """StableDiffusionXLPipeline: 16x16 images from 4x8x8 latents, two CLIP text encoders, Euler."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    unet = _seeded(seed, lambda: UNet2DConditionModel(
        block_out_channels=(2, 4), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, transformer_layers_per_block=(1, 2), projection_class_embeddings_input_dim=80,
        cross_attention_dim=64, norm_num_groups=1,
    ))
    config = _tiny_clip_config(hidden_act="gelu", projection_dim=32)
    pipe = StableDiffusionXLPipeline(
        vae=tiny_vae(seed), text_encoder=_seeded(seed, lambda: CLIPTextModel(config)), tokenizer=tiny_clip_tokenizer(),
        text_encoder_2=_seeded(seed, lambda: CLIPTextModelWithProjection(config)), tokenizer_2=tiny_clip_tokenizer(),
        unet=unet, image_encoder=None, feature_extractor=None,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                         beta_schedule="scaled_linear", timestep_spacing="leading"),
    )
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, guidance_scale=5.0, num_inference_steps=2)


def lcm(seed: int = 0) -> tuple:
    """LatentConsistencyModelPipeline: 16x16 images from 4x8x8 latents, LCMScheduler."""
    from diffusers import LatentConsistencyModelPipeline, LCMScheduler

    from tiny_pipelines import SD_SCHEDULER_CONFIG

    unet = _seeded(seed, lambda: UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2, time_cond_proj_dim=32,
    ))
    pipe = LatentConsistencyModelPipeline(
        vae=tiny_vae(seed), text_encoder=_seeded(seed, lambda: CLIPTextModel(_tiny_clip_config())),
        tokenizer=tiny_clip_tokenizer(), unet=unet, scheduler=LCMScheduler.from_config(SD_SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, guidance_scale=6.0, num_inference_steps=2)


def deepfloyd_if(seed: int = 0) -> tuple:
    """IFPipeline (stage I): 3x8x8 pixels, a T5 text encoder, DDPM with learned variance."""
    from diffusers import IFPipeline

    unet = _seeded(seed, lambda: UNet2DConditionModel(
        sample_size=8, layers_per_block=1, block_out_channels=[32, 64],
        down_block_types=["ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"],
        mid_block_type="UNetMidBlock2DSimpleCrossAttn", up_block_types=["SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"],
        in_channels=3, out_channels=6, cross_attention_dim=32, encoder_hid_dim=32, attention_head_dim=8,
        addition_embed_type="text", addition_embed_type_num_heads=2, cross_attention_norm="group_norm",
        resnet_time_scale_shift="scale_shift", act_fn="gelu",
    ))
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001, beta_end=0.02,
        thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0, prediction_type="epsilon",
        variance_type="learned_range",
    )
    pipe = IFPipeline(
        tokenizer=tiny_t5_tokenizer(), text_encoder=_seeded(seed, lambda: T5EncoderModel(tiny_t5_config())), unet=unet,
        scheduler=scheduler, safety_checker=None, feature_extractor=None, watermarker=None, requires_safety_checker=False,
    )
    return _quiet(pipe), dict(prompt="a cat", num_inference_steps=2, clean_caption=False)


def kandinsky22_prior(seed: int = 0):
    """KandinskyV22PriorPipeline: text -> 32-d image embeddings (no images), CLIP text and vision encoders."""
    from diffusers import KandinskyV22PriorPipeline, PriorTransformer, UnCLIPScheduler
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    def prior():
        model = PriorTransformer(num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1)
        model.clip_std = torch.nn.Parameter(torch.ones(model.clip_std.shape))
        return model

    image_encoder = _seeded(seed, lambda: CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, image_size=28, projection_dim=32, intermediate_size=37, num_attention_heads=4, num_channels=3,
        num_hidden_layers=1, patch_size=14,
    )))
    pipe = KandinskyV22PriorPipeline(
        prior=_seeded(seed, prior), image_encoder=image_encoder, text_encoder=_clip_with_projection(seed),
        tokenizer=tiny_clip_tokenizer(),
        scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample", num_train_timesteps=1000,
                                  clip_sample=True, clip_sample_range=10.0),
        image_processor=CLIPImageProcessor(crop_size=28, size=28),
    )
    return _quiet(pipe), dict(prompt="a cat", num_inference_steps=2)


def kandinsky22_combined(seed: int = 0):
    """KandinskyV22CombinedPipeline: the prior's embeddings decoded by :func:`kandinsky22`'s decoder."""
    from diffusers import KandinskyV22CombinedPipeline

    decoder, _ = kandinsky22(seed)
    prior, _ = kandinsky22_prior(seed)
    pipe = KandinskyV22CombinedPipeline(
        **decoder.components, **{f"prior_{name}": module for name, module in prior.components.items()},
    )
    return _quiet(pipe), dict(prompt="a cat", height=16, width=16, num_inference_steps=2, prior_num_inference_steps=2)

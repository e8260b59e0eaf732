"""Sample images during training: fixed prompts, fixed seed, the UNet as it is at this step.

Prompt embeddings are computed by the trainer (once when the text encoders are frozen), so the
text encoders may stay off the GPU; the VAE decodes in fp32 (fp16 VAEs give black images).
"""
from __future__ import annotations

from typing import Sequence


def encode_prompts(tokenizers, text_encoders, prompts: Sequence[str], device):
    """SDXL conditioning of ``prompts``: (embeds (B, 77, D1 + D2), pooled (B, P)).

    As diffusers' StableDiffusionXLPipeline: penultimate hidden states of both encoders,
    concatenated, and the second encoder's projected pooled output."""
    import torch

    embeds, pooled = [], None
    for tok, te in zip(tokenizers, text_encoders):
        ids = tok(list(prompts), padding="max_length", max_length=tok.model_max_length, truncation=True,
                  return_tensors="pt").input_ids.to(device)
        out = te(ids, output_hidden_states=True)
        embeds.append(out.hidden_states[-2])
        if hasattr(out, "text_embeds"):
            pooled = out.text_embeds
    if pooled is None:
        raise ValueError("the second text encoder must be a CLIPTextModelWithProjection")
    return torch.cat(embeds, dim=-1), pooled


def render_samples(unet, vae, scheduler_config, conditions, width: int, height: int, seed: int, steps: int,
                   guidance: float, autocast):
    """One PIL image per (embeds, pooled) condition, denoised by ``unet`` with an Euler scheduler."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=None, text_encoder_2=None, tokenizer=None, tokenizer_2=None,
                                     unet=unet, scheduler=EulerDiscreteScheduler.from_config(scheduler_config))
    pipe.set_progress_bar_config(disable=True)
    device = next(unet.parameters()).device
    images = []
    was_training = unet.training
    unet.eval()
    try:
        for embeds, pooled in conditions:
            embeds = embeds.to(device)[None] if embeds.dim() == 2 else embeds.to(device)
            pooled = pooled.to(device)[None] if pooled.dim() == 1 else pooled.to(device)
            gen = torch.Generator("cpu").manual_seed(seed)
            with torch.no_grad(), autocast():
                latents = pipe(prompt_embeds=embeds, pooled_prompt_embeds=pooled,
                               negative_prompt_embeds=torch.zeros_like(embeds),
                               negative_pooled_prompt_embeds=torch.zeros_like(pooled),
                               width=width, height=height, num_inference_steps=steps, guidance_scale=guidance,
                               generator=gen, output_type="latent").images
            with torch.no_grad():
                vae_device = next(vae.parameters()).device
                latents = latents.to(vae_device, torch.float32)
                shift = getattr(vae.config, "shift_factor", None) or 0.0
                pixels = vae.decode(latents / vae.config.scaling_factor + shift).sample
            images.extend(pipe.image_processor.postprocess(pixels.float().cpu(), output_type="pil"))
    finally:
        unet.train(was_training)
    return images

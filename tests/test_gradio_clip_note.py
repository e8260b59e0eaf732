"""The Generate tab says when CLIP strength cannot matter: a LoRA without text-encoder weights."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from _gradio_harness import get_client, get_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _lora(path, text_encoder: bool):
    t = {"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 64),
         "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(64, 4)}
    if text_encoder:
        t["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight"] = torch.zeros(4, 32)
        t["lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight"] = torch.zeros(32, 4)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(t, str(path))


def test_choosing_a_lora_without_text_encoder_weights_shows_the_note():
    wd = get_server()["ctx"].workdir
    _lora(wd / "loras" / "unet_only.safetensors", False)
    _lora(wd / "loras" / "with_te.safetensors", True)
    c = get_client()
    note = c.predict("loras/unet_only.safetensors", api_name="/generate_lora_note")
    assert "CLIP strength has no effect" in note and "unet_only.safetensors" in note
    assert c.predict("loras/with_te.safetensors", api_name="/generate_lora_note") == ""
    assert c.predict("(no LoRA)", api_name="/generate_lora_note") == ""

"""SDXL LoRA training: captioned images in, one kohya-layout .safetensors out.

    from trailcam_core.lora import TrainOptions, train_lora
    result = train_lora("favourites/", "sd_xl_base_1.0.safetensors", "runs/night", TrainOptions(rank=16))

Modules: ``dataset`` (captions, buckets, augmentation), ``train`` (the loop), ``kohya`` (key
names, peft -> kohya conversion, metadata, atomic save), ``checkpoint`` (resume), ``sampling``
(sample images), ``options`` (TrainOptions and presets).
"""
from trailcam_core.lora.kohya import kohya_state_dict, lora_names, read_metadata, save_lora
from trailcam_core.lora.options import PRESETS, TrainOptions
from trailcam_core.lora.publish import train_or_reuse
from trailcam_core.lora.train import LoraTrainer, TrainResult, train_lora
from trailcam_core.lora.files import find_lora_files
from trailcam_core.lora.options import check_output_name

__all__ = ["check_output_name", "find_lora_files", "TrainOptions", "PRESETS", "train_lora", "LoraTrainer", "TrainResult", "kohya_state_dict", "lora_names",
           "save_lora", "read_metadata", "train_or_reuse"]

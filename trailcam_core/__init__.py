"""trailcam-curation core: every stage of turning camera-trap archives into curated collections.

Data flows one way: dataset -> subset -> crop -> tags -> embed -> mosaic -> lora -> generate.
Nothing in this package imports ComfyUI or Gradio; the CLI, the ComfyUI nodes and the Gradio
app are thin faces over these modules.
"""

__version__ = "0.1.0"

"""Draw the picture beside each workflow (ComfyUI's template browser shows ``<name>.jpg``) and the
pack's registry icon (docs/images/icon.png), from the synthetic sample frames.

    python workflows/thumbnails.py

Each card shows what the workflow makes (crops with their captions, a mosaic, a loss curve, a
generation with its two strengths) above the chain of nodes it runs.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

W, H = 512, 384
BG, INK, ACCENT = (24, 28, 26), (236, 232, 220), (226, 160, 60)


def font(size: int):
    return ImageFont.load_default(size=size)


def frames(n: int, size: int) -> list[Image.Image]:
    from trailcam_core.samples import ensure_sample

    sample = ensure_sample(Path(tempfile.mkdtemp()) / "sample")
    files = sorted(p for p in sample.parent.rglob("*.jpg"))[:n]
    return [ImageOps.fit(Image.open(p).convert("RGB"), (size, size)) for p in files]


def node_chain(draw: ImageDraw.ImageDraw, wf: dict, y: int) -> None:
    names = [n["type"] for n in sorted(wf["nodes"], key=lambda n: n.get("order", 0)) if n["type"] != "PreviewImage"]
    x, f = 12, font(12)
    for i, name in enumerate(names):
        w = int(draw.textlength(name, font=f)) + 12
        if x + w > W - 12:
            x, y = 12, y + 26
        draw.rounded_rectangle([x, y, x + w, y + 20], 5, fill=(52, 60, 56), outline=(90, 100, 96))
        draw.text((x + 6, y + 4), name, font=f, fill=INK)
        x += w + 8


def card(name: str, wf: dict, picture: Image.Image) -> Image.Image:
    img = Image.new("RGB", (W, H), BG)
    img.paste(picture, ((W - picture.width) // 2, 44))
    d = ImageDraw.Draw(img)
    d.text((12, 10), name, font=font(20), fill=ACCENT)
    node_chain(d, wf, 44 + picture.height + 10)
    return img


def pictures(crops: list[Image.Image]) -> dict[str, Image.Image]:
    out = {}
    strip = Image.new("RGB", (488, 240), BG)
    d = ImageDraw.Draw(strip)
    for i, c in enumerate(crops[:4]):
        strip.paste(c.resize((112, 112)), (i * 122, 0))
        d.text((i * 122, 118), ["trlcm, coyote,\ninfrared night", "trlcm, deer,\nday", "trlcm, opossum,\nnight flash",
                                "trlcm, rabbit,\ncamera glitch"][i], font=font(11), fill=INK)
    for i, c in enumerate(crops[4:8]):
        strip.paste(c.resize((112, 80)), (i * 122, 156))
    out["1"] = strip
    mosaic = Image.new("RGB", (488, 240), BG)
    tiles = sorted(crops[:40], key=lambda c: sum(c.resize((1, 1)).getpixel((0, 0))))
    for i, c in enumerate(tiles):
        mosaic.paste(c.resize((48, 48)), ((i % 10) * 49, (i // 10) * 49 + 20))
    out["2"] = mosaic
    loss = Image.new("RGB", (488, 240), BG)
    d = ImageDraw.Draw(loss)
    for i, c in enumerate(crops[:3]):
        loss.paste(c.resize((100, 100)), (i * 106, 0))
    d.rectangle([330, 0, 486, 200], outline=(90, 100, 96))
    pts = [(334 + k * 3, 190 - int(150 * (0.25 + 0.75 * 0.93 ** k))) for k in range(50)]
    d.line(pts, fill=ACCENT, width=2)
    d.text((336, 204), "loss", font=font(12), fill=INK)
    d.text((0, 110), "-> models/loras/trailcam_lora.safetensors", font=font(13), fill=INK)
    out["3"] = loss
    gen = Image.new("RGB", (488, 240), BG)
    d = ImageDraw.Draw(gen)
    gen.paste(crops[5].resize((200, 200)), (0, 0))
    d.text((214, 10), "trlcm, trailcam photo,\ncoyote, infrared night", font=font(14), fill=INK)
    for k, (label, v) in enumerate((("strength_model", 0.8), ("strength_clip", 0.8))):
        y = 80 + k * 50
        d.text((214, y), f"{label}  {v}", font=font(13), fill=INK)
        d.rectangle([214, y + 20, 470, y + 26], fill=(52, 60, 56))
        d.rectangle([214, y + 20, 214 + int(256 * v), y + 26], fill=ACCENT)
    out["4"] = gen
    grid = Image.new("RGB", (488, 240), BG)
    for i, c in enumerate(crops[:16]):
        grid.paste(c.resize((56, 56)), ((i % 8) * 60 + 4, (i // 8) * 60 + 4))
    ImageDraw.Draw(grid).text((4, 132), "16 generations -> embeddings -> similarity mosaic", font=font(13), fill=INK)
    out["5"] = grid
    gan = Image.new("RGB", (488, 240), BG)
    d = ImageDraw.Draw(gan)
    samples = HERE.parent / "docs" / "gan" / "cpu64_samples.png"      # what the benchmark's GAN drew
    if samples.is_file():
        with Image.open(samples) as im:
            gan.paste(ImageOps.fit(im.convert("RGB"), (220, 220)), (0, 0))
    else:
        for i, c in enumerate(crops[:16]):
            gan.paste(c.resize((54, 54)), ((i % 4) * 55, (i // 4) * 55))
    d.text((234, 10), "TrainGAN on input/Favorites\n-> models/gan/trailcam_gan\n\nSampleGAN: seed, count,\n"
                      "truncation, more glitch,\nmore flash night", font=font(14), fill=INK)
    out["6"] = gan
    return out


def icon(crops: list[Image.Image]) -> Image.Image:
    img = Image.new("RGB", (400, 400), BG)
    for i, c in enumerate(crops[:9]):
        img.paste(c.resize((128, 128)), ((i % 3) * 134 + 2, (i // 3) * 134 + 2))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 330, 400, 400], fill=BG)
    d.text((14, 346), "trailcam curation", font=font(34), fill=ACCENT)
    return img


def main() -> int:
    crops = frames(40, 160)
    pics = pictures(crops)
    for path in sorted(HERE.glob("*.json")):
        wf = json.loads(path.read_text())
        card(path.stem, wf, pics[path.stem.split(".", 1)[0]]).save(path.with_suffix(".jpg"), quality=88)
        print("wrote", path.with_suffix(".jpg").name)
    out = HERE.parent / "docs" / "images" / "icon.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    icon(crops).save(out)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

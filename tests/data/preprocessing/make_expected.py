"""Regenerates the preprocessing fixtures in this folder (run with Debian's /usr/bin/python3:
Pillow 9.4, torchvision 0.14.1). Sources are skimage's sample images (BSD/CC0, see README.md)."""
import io, json, os, sys
from PIL import Image
import torchvision.transforms as T

SK = "/usr/lib/python3/dist-packages/skimage/data"
here = os.path.dirname(os.path.abspath(__file__))

def save(img, name, **kw):
    img.save(os.path.join(here, name), **kw)

# Sources: small real photos in several formats and modes.
cat = Image.open(os.path.join(SK, "chelsea.png")).convert("RGB")          # 451x300 RGB
save(cat, "cat.png")
save(Image.open(os.path.join(SK, "camera.png")).resize((160, 160), Image.BILINEAR), "camera_gray.png")  # L mode
save(Image.open(os.path.join(SK, "logo.png")).resize((120, 120), Image.BILINEAR), "logo_rgba.png")     # RGBA
save(cat.resize((150, 100), Image.BILINEAR), "cat_small.bmp")
save(cat.resize((150, 100), Image.BILINEAR), "cat_small.webp", lossless=True)
save(cat.resize((150, 100), Image.BILINEAR).convert("P", palette=Image.ADAPTIVE), "cat_small.gif")
# A JPEG stored sideways with EXIF orientation 6 (rotate 90° clockwise to view): the pixels are
# the upright cat rotated 90° counter-clockwise.
sideways = cat.transpose(Image.ROTATE_90)
exif = Image.Exif(); exif[0x0112] = 6
save(sideways, "cat_exif6.jpg", quality=95, exif=exif.tobytes())

cases = []
for src, mode_note in [("cat.png", "RGB"), ("camera_gray.png", "L"), ("logo_rgba.png", "RGBA"), ("cat_small.bmp", "RGB"), ("cat_small.webp", "RGB"), ("cat_small.gif", "P")]:
    for interp, name in [(T.InterpolationMode.BILINEAR, "bilinear"), (T.InterpolationMode.BICUBIC, "bicubic")]:
        for resize, crop in [(256, 224), (73, 64)] + ([(342, 299)] if src == "cat.png" else []):
            img = Image.open(os.path.join(here, src)).convert("RGB")
            out = T.CenterCrop(crop)(T.Resize(resize, interpolation=interp)(img))
            exp = f"expected/{os.path.splitext(src)[0]}_{os.path.splitext(src)[1][1:]}_{name}_{resize}_{crop}.png"
            os.makedirs(os.path.join(here, "expected"), exist_ok=True)
            out.save(os.path.join(here, exp))
            cases.append({"source": src, "interpolation": name, "resize": resize, "crop": crop, "expected": exp})
json.dump(cases, open(os.path.join(here, "cases.json"), "w"), indent=1)
print(len(cases), "cases")

"""Attribution metadata inside PNG files.

The JSON goes into a compressed iTXt chunk under the key ``diffusers_attr``; an XMP packet marks the
image with the IPTC digital source type ``trainedAlgorithmicMedia`` so that other tools see it is
AI-generated.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from ..jsonio import dumps, loads

METADATA_KEY = "diffusers_attr"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
_XMP = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">
   <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def write_png(image: Image.Image, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Save ``image`` as PNG at ``path`` with ``metadata`` embedded; written atomically."""
    path = Path(path)
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, dumps(metadata, separators=(",", ":")), zip=True)
    info.add_itxt("XML:com.adobe.xmp", _XMP)
    partial = path.with_name(path.name + ".partial")
    image.save(partial, format="PNG", pnginfo=info)
    os.replace(partial, path)
    return path


def read_png_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The attribution embedded in a PNG written by :func:`write_png`."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            text = getattr(image, "text", {})
    except (OSError, SyntaxError) as error:
        raise ValueError(f"{path} is not a readable image: {error}") from error
    if METADATA_KEY not in text:
        raise ValueError(
            f"{path} carries no diffusers-attr metadata (no '{METADATA_KEY}' PNG chunk); "
            "was it written by AttributedPipeline or `diffusers-attr generate`?"
        )
    return loads(text[METADATA_KEY])

// EXIF orientation: finding the Orientation tag (0x0112) in JPEG APP1, WebP "EXIF" and PNG "eXIf" data and
// applying it to pixels. Mirrors PIL.ImageOps.exif_transpose as called by transformers' load_image.
#pragma once

#include <cstddef>
#include <cstdint>

#include "image/image_types.h"

namespace idefics {

// Orientation from a TIFF-structured EXIF blob (an optional "Exif\0\0" prefix is skipped). Returns 1..8, or
// 1 (normal) when the tag is absent, the value is out of range or the blob is malformed.
int ExifOrientationFromTiff(const uint8_t* data, size_t size);

// Orientation stored in an encoded PNG/JPEG/WebP file (1 when there is none). Never reads out of bounds.
int FindExifOrientation(const uint8_t* data, size_t size);

// Transposes the image so it displays upright, as exif_transpose does: 2 mirror, 3 rotate 180, 4 flip,
// 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise; 1 and others: unchanged.
RgbImage ApplyExifOrientation(const RgbImage& img, int orientation);

}  // namespace idefics

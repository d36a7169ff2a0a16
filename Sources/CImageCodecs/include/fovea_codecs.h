#ifndef FOVEA_CODECS_H
#define FOVEA_CODECS_H
#include <stddef.h>
#include <stdint.h>

/* Decoded 8-bit pixels, interleaved: channels is 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA).
 * The caller frees `pixels` with fovea_free. */
typedef struct {
    uint8_t *pixels;
    int width;
    int height;
    int channels;
} fovea_image;

/* Return 0 on success; otherwise a negative code and a message in `error`.
 * -1: not this format, -2: corrupt or truncated, -3: larger than max_pixels (checked from the
 * header, before any pixel is decoded), -4: out of memory. */
int fovea_png_decode(const uint8_t *data, size_t length, size_t max_pixels, fovea_image *out, char *error, size_t error_length);
int fovea_jpeg_decode(const uint8_t *data, size_t length, size_t max_pixels, fovea_image *out, char *error, size_t error_length);
void fovea_free(void *p);

/* Writes 8-bit RGB rows to a PNG file. 0 on success; otherwise negative, with a message. */
int fovea_png_encode_file(const char *path, const uint8_t *rgb, int width, int height, char *error, size_t error_length);

#endif

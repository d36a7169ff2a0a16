// libpng and libjpeg report errors by longjmp, which Swift cannot catch; this file keeps the
// setjmp on the C side and turns every failure into a return code and a message.
#include "fovea_codecs.h"
#include <png.h>
#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

void fovea_free(void *p) { free(p); }

// MARK: PNG

typedef struct {
    const uint8_t *data;
    size_t length;
    size_t offset;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
    png_source *src = (png_source *)png_get_io_ptr(png);
    if (src->offset + n > src->length) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(out, src->data + src->offset, n);
    src->offset += n;
}

static void png_error_handler(png_structp png, png_const_charp message) {
    char *buffer = (char *)png_get_error_ptr(png);
    snprintf(buffer, 256, "%s", message);
    png_longjmp(png, 1);
}

static void png_warning_handler(png_structp png, png_const_charp message) { (void)png; (void)message; }

int fovea_png_decode(const uint8_t *data, size_t length, size_t max_pixels, fovea_image *out, char *error, size_t error_length) {
    char message[256] = {0};
    if (length < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(error, error_length, "not a PNG file (bad signature)");
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, png_error_handler, png_warning_handler);
    if (!png) { snprintf(error, error_length, "out of memory"); return -4; }
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile int code = -2;
    png_source src = {data, length, 0};
    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        if (code == -2) snprintf(error, error_length, "corrupt PNG: %s", message);
        return code;
    }
    png_set_read_fn(png, &src, png_read_memory);
    // Do not let libpng's own limits stop us before our size check names the problem.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((size_t)width * (size_t)height > max_pixels) {
        snprintf(error, error_length, "image is %u x %u = %zu pixels, over the limit of %zu", width, height,
                 (size_t)width * (size_t)height, max_pixels);
        code = -3;
        png_longjmp(png, 1);
    }
    int color = png_get_color_type(png, info);
    // 16-bit samples keep their high byte, as PIL does when it opens them as 8-bit modes.
    png_set_strip_16(png);
    png_set_packing(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    size_t stride = png_get_rowbytes(png, info);
    pixels = (uint8_t *)malloc(stride * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (!pixels || !rows) { code = -4; snprintf(message, sizeof message, "out of memory"); png_longjmp(png, 1); }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * stride;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->pixels = pixels;
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    return 0;
}

// MARK: JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_error;

static void jpeg_error_exit(j_common_ptr cinfo) {
    jpeg_error *err = (jpeg_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

// libjpeg pads a truncated stream with grey and only warns; PIL refuses such a file, and so do we.
// Other warnings (extraneous bytes before a marker, ...) leave a usable image and are ignored.
static void jpeg_warning(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_error *err = (jpeg_error *)cinfo->err;
        snprintf(err->message, sizeof err->message, "unexpected end of file (truncated JPEG)");
        longjmp(err->jump, 1);
    }
}

int fovea_jpeg_decode(const uint8_t *data, size_t length, size_t max_pixels, fovea_image *out, char *error, size_t error_length) {
    if (length < 3 || data[0] != 0xFF || data[1] != 0xD8) {
        snprintf(error, error_length, "not a JPEG file (bad signature)");
        return -1;
    }
    struct jpeg_decompress_struct cinfo;
    jpeg_error err;
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = jpeg_error_exit;
    err.base.emit_message = jpeg_warning;
    uint8_t *volatile pixels = NULL;
    volatile int code = -2;
    if (setjmp(err.jump)) {
        free(pixels);
        jpeg_destroy_decompress(&cinfo);
        if (code == -2) snprintf(error, error_length, "corrupt JPEG: %s", err.message);
        else snprintf(error, error_length, "%s", err.message);
        return code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)length);
    jpeg_read_header(&cinfo, TRUE);
    if ((size_t)cinfo.image_width * (size_t)cinfo.image_height > max_pixels) {
        snprintf(err.message, sizeof err.message, "image is %u x %u = %zu pixels, over the limit of %zu", cinfo.image_width,
                 cinfo.image_height, (size_t)cinfo.image_width * cinfo.image_height, max_pixels);
        code = -3;
        longjmp(err.jump, 1);
    }
    // Grey stays grey, everything else (YCbCr, RGB, CMYK via libjpeg's own conversion) becomes RGB.
    cinfo.out_color_space = cinfo.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        snprintf(err.message, sizeof err.message, "CMYK JPEG is not supported");
        code = -2;
        longjmp(err.jump, 1);
    }
    jpeg_start_decompress(&cinfo);
    int channels = cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * channels;
    pixels = (uint8_t *)malloc(stride * cinfo.output_height);
    if (!pixels) { code = -4; snprintf(err.message, sizeof err.message, "out of memory"); longjmp(err.jump, 1); }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    out->pixels = pixels;
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = channels;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

// MARK: PNG encoding (for `fovea explain`)

int fovea_png_encode_file(const char *path, const uint8_t *rgb, int width, int height, char *error, size_t error_length) {
    char message[256] = {0};
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(error, error_length, "cannot open for writing");
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, png_error_handler, png_warning_handler);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        if (png) png_destroy_write_struct(&png, NULL);
        fclose(f);
        snprintf(error, error_length, "out of memory");
        return -4;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        snprintf(error, error_length, "%s", message);
        return -2;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) {
        snprintf(error, error_length, "write failed");
        return -2;
    }
    return 0;
}

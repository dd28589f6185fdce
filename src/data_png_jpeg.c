/* One image file in memory -> 8-bit pixels (libpng, libjpeg-turbo), and
 * those pixels -> the data set's channels and size (planar uint8). The
 * folder: and list: readers (data_image.c) run these on many files at
 * once, so nothing here touches shared state: every call keeps its
 * errors in its own buffers and reports them through l2rw__fail, whose
 * message is per thread.
 *
 * Conversions, chosen to match what Pillow gives for Image.convert so
 * that users comparing with a Python pipeline see the same pixels:
 *   16-bit PNG samples keep their high byte (Pillow's "RGB;16B" unpack);
 *   palette PNG becomes RGB; grey below 8 bits is scaled to 8 bits;
 *   alpha (RGBA, grey+alpha, tRNS) is dropped, not composited;
 *   CMYK and YCCK JPEG are refused (a bad file): converting them needs
 *   the Adobe inversion convention and a colour profile to be right;
 *   grey into a colour set is replicated; colour into a grey set is
 *   ITU-R BT.601 luma with Pillow's fixed-point rounding. */
#define _POSIX_C_SOURCE 200809L
#include "data_internal.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

enum {
    WHY_MAX = 200,
    /* Larger pictures are refused before any pixel is allocated: a
     * 60-byte PNG may announce 2^31 x 2^31 pixels. 2^27 pixels (11585
     * square) is 400 MB of RGB per decoding thread. */
    MAX_PIXELS = 1 << 27,
    MAX_SIDE = 1 << 16,
    /* BT.601 luma in 16-bit fixed point, as Pillow's convert("L"). */
    LUMA_R = 19595, LUMA_G = 38470, LUMA_B = 7471, LUMA_HALF = 0x8000
};

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G',
                                           '\r', '\n', 0x1a, '\n'};

l2rw__image_kind l2rw__image_sniff(const unsigned char *buf, size_t len)
{
    if (len >= sizeof png_magic && !memcmp(buf, png_magic, sizeof png_magic))
        return L2RW__IMG_PNG;
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff)
        return L2RW__IMG_JPEG;
    return L2RW__IMG_NONE;
}

void l2rw__image_free(l2rw__image *im)
{
    if (!im) return;
    free(im->px);
    memset(im, 0, sizeof *im);
}

static l2rw_status check_dims(unsigned long w, unsigned long h,
                              const char *name)
{
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE ||
        (uint64_t)w * h > MAX_PIXELS)
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: %lux%lu pixels (width x "
                          "height) is outside what l2rw decodes (at most "
                          "%d pixels)", name, w, h, MAX_PIXELS);
    return L2RW_OK;
}

static l2rw_status alloc_pixels(l2rw__image *im, int c, int h, int w,
                                const char *name)
{
    im->c = c;
    im->h = h;
    im->w = w;
    im->px = l2rw__calloc((size_t)c * (size_t)h, (size_t)w);
    if (!im->px)
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory for %dx%d "
                          "pixels", name, w, h);
    return L2RW_OK;
}

/* ---------------------------------------------------------------- PNG */

/* State of one PNG decode. It lives in the caller's frame, not in the
 * frame that calls setjmp, so its fields keep their values after
 * libpng's longjmp. */
typedef struct {
    const unsigned char *buf;
    size_t len, pos;
    const char *name;
    l2rw__image *im;
    unsigned char **rows;
    int colour;
    l2rw_status status;   /* set before a longjmp of our own */
    char why[WHY_MAX];    /* libpng's message */
} png_job;

static void png_read_mem(png_structp p, png_bytep out, png_size_t n)
{
    png_job *j = png_get_io_ptr(p);
    if (n > j->len - j->pos) png_error(p, "file truncated");
    memcpy(out, j->buf + j->pos, n);
    j->pos += n;
}

static void png_on_error(png_structp p, png_const_charp msg)
{
    png_job *j = png_get_error_ptr(p);
    snprintf(j->why, sizeof j->why, "%s", msg);
    png_longjmp(p, 1);
}

/* Warnings (a bad CRC in an ancillary chunk, say) do not stop a decode,
 * and the library never prints. */
static void png_on_warning(png_structp p, png_const_charp msg)
{
    (void)p;
    (void)msg;
}

/* Transforms to 8-bit grey or RGB without alpha (header comment). */
static void png_setup(png_structp p, png_infop info, png_job *j)
{
    int depth = png_get_bit_depth(p, info);
    int ctype = png_get_color_type(p, info);
    j->colour = (ctype & PNG_COLOR_MASK_COLOR) != 0;
    if (depth == 16) png_set_strip_16(p);
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(p);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
}

static void png_run(png_structp p, png_infop info, png_job *j)
{
    if (setjmp(png_jmpbuf(p))) return;
    png_set_read_fn(p, j, png_read_mem);
    png_set_user_limits(p, MAX_SIDE, MAX_SIDE);
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info);
    png_uint_32 h = png_get_image_height(p, info);
    /* j->status stays a failure until the last row is read: a longjmp
     * from libpng may come at any call below. */
    l2rw_status s = check_dims(w, h, j->name);
    if (s != L2RW_OK) {
        j->status = s;
        return;
    }
    png_setup(p, info, j);
    int c = png_get_channels(p, info);
    if ((c != 1 && c != 3) || png_get_rowbytes(p, info) != (size_t)w * c) {
        j->status = l2rw__fail(L2RW_ERR_FORMAT, "%s: PNG decodes to %d "
                               "channels, expected grey or RGB", j->name, c);
        return;
    }
    if ((s = alloc_pixels(j->im, c, (int)h, (int)w, j->name)) != L2RW_OK) {
        j->status = s;
        return;
    }
    j->rows = l2rw__calloc(h, sizeof *j->rows);
    if (!j->rows) {
        j->status = l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", j->name);
        return;
    }
    for (png_uint_32 y = 0; y < h; y++)
        j->rows[y] = j->im->px + (size_t)y * w * (size_t)c;
    png_read_image(p, j->rows);
    j->status = L2RW_OK;
}

static l2rw_status decode_png(const unsigned char *buf, size_t len,
                              const char *name, l2rw__image *im,
                              int *colour)
{
    png_job j;
    memset(&j, 0, sizeof j);
    j.buf = buf;
    j.len = len;
    j.name = name;
    j.im = im;
    j.status = L2RW_ERR_FORMAT; /* until png_run finishes */
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, &j,
                                           png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    if (!info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", name);
    }
    png_run(p, info, &j);
    png_destroy_read_struct(&p, &info, NULL);
    free(j.rows);
    if (j.status == L2RW_OK) {
        *colour = j.colour;
        return L2RW_OK;
    }
    l2rw__image_free(im);
    if (j.why[0])
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: corrupt PNG: %s", name,
                          j.why);
    return j.status; /* our own message is set */
}

/* --------------------------------------------------------------- JPEG */

typedef struct {
    struct jpeg_error_mgr pub; /* first: libjpeg casts to it */
    jmp_buf jump;
    char why[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_on_error(j_common_ptr ci)
{
    jpeg_err *e = (jpeg_err *)ci->err;
    (*ci->err->format_message)(ci, e->why);
    longjmp(e->jump, 1);
}

/* libjpeg's warnings are corrupt data it papered over (a truncated file
 * decodes as grey to the end): such a file is bad, not a picture. Trace
 * messages (level >= 0) are ignored, and nothing is printed. */
static void jpeg_on_message(j_common_ptr ci, int level)
{
    if (level < 0) jpeg_on_error(ci);
}

typedef struct {
    struct jpeg_decompress_struct ci;
    jpeg_err err;
    const char *name;
    l2rw__image *im;
    int colour;
    l2rw_status status;
} jpeg_job;

static void jpeg_run(jpeg_job *j, const unsigned char *buf, size_t len)
{
    struct jpeg_decompress_struct *ci = &j->ci;
    if (setjmp(j->err.jump)) return;
    jpeg_mem_src(ci, buf, (unsigned long)len);
    jpeg_read_header(ci, TRUE);
    if (ci->jpeg_color_space == JCS_CMYK || ci->jpeg_color_space == JCS_YCCK) {
        j->status = l2rw__fail(L2RW_ERR_FORMAT, "%s: CMYK JPEG is not "
                               "supported (convert it to RGB)", j->name);
        return;
    }
    j->colour = ci->num_components != 1;
    ci->out_color_space = j->colour ? JCS_RGB : JCS_GRAYSCALE;
    /* j->status stays a failure until the end (see png_run). */
    l2rw_status s = check_dims(ci->image_width, ci->image_height, j->name);
    if (s != L2RW_OK) {
        j->status = s;
        return;
    }
    jpeg_start_decompress(ci);
    int c = ci->output_components, w = (int)ci->output_width;
    s = alloc_pixels(j->im, c, (int)ci->output_height, w, j->name);
    if (s != L2RW_OK) {
        j->status = s;
        return;
    }
    while (ci->output_scanline < ci->output_height) {
        JSAMPROW row = j->im->px + (size_t)ci->output_scanline * w * c;
        jpeg_read_scanlines(ci, &row, 1);
    }
    jpeg_finish_decompress(ci);
    j->status = L2RW_OK;
}

static l2rw_status decode_jpeg(const unsigned char *buf, size_t len,
                               const char *name, l2rw__image *im,
                               int *colour)
{
    jpeg_job *j = calloc(1, sizeof *j); /* 1 KB of libjpeg state */
    if (!j) return l2rw__fail(L2RW_ERR_NOMEM, "%s: out of memory", name);
    j->name = name;
    j->im = im;
    j->status = L2RW_ERR_FORMAT;
    j->ci.err = jpeg_std_error(&j->err.pub);
    j->err.pub.error_exit = jpeg_on_error;
    j->err.pub.emit_message = jpeg_on_message;
    if (!setjmp(j->err.jump)) {
        jpeg_create_decompress(&j->ci);
        jpeg_run(j, buf, len);
    }
    jpeg_destroy_decompress(&j->ci);
    l2rw_status s = j->status;
    if (s == L2RW_OK) *colour = j->colour;
    else l2rw__image_free(im);
    if (s != L2RW_OK && j->err.why[0])
        s = l2rw__fail(L2RW_ERR_FORMAT, "%s: corrupt JPEG: %s", name,
                       j->err.why);
    free(j);
    return s;
}

l2rw_status l2rw__image_decode(const unsigned char *buf, size_t len,
                               const char *name, l2rw__image *im,
                               int *colour)
{
    memset(im, 0, sizeof *im);
    int col = 0;
    switch (l2rw__image_sniff(buf, len)) {
    case L2RW__IMG_PNG: L2RW_TRY(decode_png(buf, len, name, im, &col)); break;
    case L2RW__IMG_JPEG:
        L2RW_TRY(decode_jpeg(buf, len, name, im, &col));
        break;
    default:
        return l2rw__fail(L2RW_ERR_FORMAT, "%s: not a PNG or JPEG file",
                          name);
    }
    if (colour) *colour = col;
    return L2RW_OK;
}

/* ------------------------------------------------------------- resize */

/* Per output index i of one axis: the inputs start[i] .. start[i] +
 * count[i] - 1 with weights wt[i * span ..]. */
typedef struct {
    int *start, *count, span;
    double *wt;
} axis_weights;

static void axis_free(axis_weights *a)
{
    free(a->start);
    free(a->count);
    free(a->wt);
}

/* Area average: output i covers [i*s, (i+1)*s) of the input, s = in/out
 * >= 1, and each input pixel [j, j+1) counts by its overlap. */
static void area_weights(axis_weights *a, int in, int out)
{
    double s = (double)in / out;
    for (int i = 0; i < out; i++) {
        double lo = (double)i * in / out, hi = (double)(i + 1) * in / out;
        int j0 = (int)floor(lo), j1 = (int)ceil(hi);
        if (j1 > in) j1 = in;
        a->start[i] = j0;
        a->count[i] = j1 - j0;
        for (int j = j0; j < j1; j++) {
            double l = j > lo ? j : lo, r = j + 1 < hi ? j + 1 : hi;
            a->wt[(size_t)i * a->span + (j - j0)] = (r - l) / s;
        }
    }
}

/* Bilinear with pixel centres aligned (align_corners=False): output i
 * samples the input at (i + 0.5) * in/out - 0.5, clamped to the edge
 * pixels. */
static void bilinear_weights(axis_weights *a, int in, int out)
{
    for (int i = 0; i < out; i++) {
        double src = (i + 0.5) * in / out - 0.5;
        if (src < 0) src = 0;
        int j0 = (int)floor(src);
        double f = src - j0;
        if (j0 >= in - 1) {
            j0 = in - 1;
            f = 0;
        }
        a->start[i] = j0;
        a->count[i] = f > 0 ? 2 : 1;
        a->wt[(size_t)i * a->span] = 1 - f;
        a->wt[(size_t)i * a->span + 1] = f;
    }
}

static l2rw_status axis_init(axis_weights *a, int in, int out)
{
    memset(a, 0, sizeof *a);
    a->span = in > out ? (int)ceil((double)in / out) + 1 : 2;
    a->start = l2rw__calloc((size_t)out, sizeof *a->start);
    a->count = l2rw__calloc((size_t)out, sizeof *a->count);
    a->wt = l2rw__calloc((size_t)out * a->span, sizeof *a->wt);
    if (!a->start || !a->count || !a->wt) {
        axis_free(a);
        return l2rw__fail(L2RW_ERR_NOMEM, "resize: out of memory");
    }
    if (in > out) area_weights(a, in, out);
    else bilinear_weights(a, in, out);
    return L2RW_OK;
}

static unsigned char round_u8(double v)
{
    v = floor(v + 0.5);
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* One plane ih x iw -> oh x ow: rows first into tmp (double, so the
 * only rounding is the final one), then columns. */
static void resize_plane(const unsigned char *src, int ih, int iw,
                         unsigned char *dst, int oh, int ow,
                         const axis_weights *ax, const axis_weights *ay,
                         double *tmp)
{
    for (int y = 0; y < ih; y++)
        for (int x = 0; x < ow; x++) {
            const double *wt = ax->wt + (size_t)x * ax->span;
            const unsigned char *row = src + (size_t)y * iw + ax->start[x];
            double v = 0;
            for (int k = 0; k < ax->count[x]; k++) v += wt[k] * row[k];
            tmp[(size_t)y * ow + x] = v;
        }
    for (int y = 0; y < oh; y++) {
        const double *wt = ay->wt + (size_t)y * ay->span;
        for (int x = 0; x < ow; x++) {
            double v = 0;
            for (int k = 0; k < ay->count[y]; k++)
                v += wt[k] * tmp[(size_t)(ay->start[y] + k) * ow + x];
            dst[(size_t)y * ow + x] = round_u8(v);
        }
    }
}

/* Channel k of pixel p of im, as a c-channel image (header comment). */
static unsigned char channel_value(const l2rw__image *im, size_t p, int c,
                                   int k)
{
    const unsigned char *px = im->px + p * (size_t)im->c;
    if (im->c == c) return px[k];
    if (im->c == 1) return px[0]; /* grey into colour: replicated */
    return (unsigned char)((LUMA_R * px[0] + LUMA_G * px[1] +
                            LUMA_B * px[2] + LUMA_HALF) >> 16);
}

l2rw_status l2rw__image_convert(const l2rw__image *im, int c, int h, int w,
                                unsigned char *dst)
{
    const size_t plane = (size_t)im->h * im->w;
    const int same = im->h == h && im->w == w;
    unsigned char *planar = same ? dst : l2rw__calloc((size_t)c, plane);
    if (!planar) return l2rw__fail(L2RW_ERR_NOMEM, "resize: out of memory");
    for (int k = 0; k < c; k++)
        for (size_t p = 0; p < plane; p++)
            planar[(size_t)k * plane + p] = channel_value(im, p, c, k);
    if (same) return L2RW_OK;
    axis_weights ax, ay;
    double *tmp = l2rw__calloc((size_t)im->h * w, sizeof *tmp);
    l2rw_status s = tmp ? axis_init(&ax, im->w, w)
                        : l2rw__fail(L2RW_ERR_NOMEM, "resize: out of memory");
    if (s == L2RW_OK && (s = axis_init(&ay, im->h, h)) != L2RW_OK)
        axis_free(&ax);
    if (s == L2RW_OK) {
        for (int k = 0; k < c; k++)
            resize_plane(planar + (size_t)k * plane, im->h, im->w,
                         dst + (size_t)k * h * w, h, w, &ax, &ay, tmp);
        axis_free(&ax);
        axis_free(&ay);
    }
    free(tmp);
    free(planar);
    return s;
}

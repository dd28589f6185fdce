/* Images as data: folder: and list: specs, PNG and JPEG decoding against
 * Pillow, channel conversion, resizing against the formula, bad files,
 * class names, the decoded-set cache, thread independence. The test
 * writes its pictures with libpng and libjpeg directly into a temporary
 * directory. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"
#include "cli_path.h"
#include "data_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jpeglib.h>

/* Pillow from Debian (python3-pil), not whatever python3 is first. */
#define PYTHON "/usr/bin/python3"

static char tmp[256];

static void pathf(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmp, name);
}

static void mkdirs(const char *rel)
{
    char p[512], *s;
    pathf(p, sizeof p, rel);
    for (s = p + strlen(tmp) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    mkdir(p, 0755);
}

/* ------------------------------------------------------------ writers */

/* A deterministic test pattern byte. */
static unsigned char pat(int i, int seed)
{
    return (unsigned char)((i * 37 + seed * 101 + (i * i) % 13) & 0xff);
}

/* PNG of color type ct and bit depth bd, w x h; samples from pat, or
 * every byte `flat` when flat >= 0. A palette image gets a 16-entry
 * palette and a tRNS chunk. */
static int write_png_bytes(const char *rel, int w, int h, int ct, int bd,
                           int seed, int flat)
{
    char path[512];
    pathf(path, sizeof path, rel);
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL,
                                            NULL, NULL);
    png_infop info = png_create_info_struct(p);
    if (setjmp(png_jmpbuf(p))) {
        fclose(fp);
        return 0;
    }
    png_init_io(p, fp);
    png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, bd, ct,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (ct == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[16];
        png_byte trns[16];
        for (int i = 0; i < 16; i++) {
            pal[i].red = pat(i, seed);
            pal[i].green = pat(i, seed + 1);
            pal[i].blue = pat(i, seed + 2);
            trns[i] = (png_byte)(i * 16);
        }
        png_set_PLTE(p, info, pal, 16);
        png_set_tRNS(p, info, trns, 16, NULL);
    }
    png_write_info(p, info);
    int ch = ct == PNG_COLOR_TYPE_RGB ? 3 : ct == PNG_COLOR_TYPE_RGBA ? 4
             : ct == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    size_t rowbytes = ((size_t)w * ch * bd + 7) / 8;
    unsigned char *row = calloc(rowbytes, 1);
    if (!row) {
        png_destroy_write_struct(&p, &info);
        fclose(fp);
        return 0;
    }
    for (int y = 0; y < h; y++) {
        for (size_t b = 0; b < rowbytes; b++)
            row[b] = flat >= 0 ? (unsigned char)flat
                               : pat((int)(y * rowbytes + b), seed);
        if (ct == PNG_COLOR_TYPE_PALETTE)
            for (size_t b = 0; b < rowbytes; b++) row[b] &= 0x0f;
        png_write_row(p, row);
    }
    png_write_end(p, NULL);
    png_destroy_write_struct(&p, &info);
    free(row);
    return fclose(fp) == 0;
}

static int write_png(const char *rel, int w, int h, int ct, int bd,
                     int seed)
{
    return write_png_bytes(rel, w, h, ct, bd, seed, -1);
}

/* JPEG of c (1 or 3) components, quality 90. */
static int write_jpeg(const char *rel, int w, int h, int c, int seed)
{
    char path[512];
    pathf(path, sizeof path, rel);
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, fp);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = c;
    ci.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    unsigned char *row = malloc((size_t)w * c);
    for (int y = 0; y < h; y++) {
        for (int b = 0; b < w * c; b++)
            row[b] = (unsigned char)((b * 255 / (w * c) + y * 20 + seed * 40)
                                     & 0xff);
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    return fclose(fp) == 0;
}

static int write_text(const char *rel, const char *text)
{
    char path[512];
    pathf(path, sizeof path, rel);
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fputs(text, fp);
    return fclose(fp) == 0;
}

/* A grey PNG of one value v everywhere: easy to recognise by class. */
static int write_flat(const char *rel, int w, int h, int v)
{
    return write_png_bytes(rel, w, h, PNG_COLOR_TYPE_GRAY, 8, 0, v);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, fp) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *len = (size_t)n;
    return b;
}

/* ---------------------------------------------------------- reference */

static int have_pillow(void)
{
    return system(PYTHON " -c 'import PIL' >/dev/null 2>&1") == 0;
}

/* Pillow's pixels of a file as l2rw states them: grey files as L (16-bit
 * grey: the high byte), others as RGB (alpha dropped). Printed as "c h w
 * hex". */
static const char *pillow_dump =
    "import sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from PIL import Image\n"
    "im = Image.open(sys.argv[1])\n"
    "if im.mode.startswith('I'):\n"
    "    data = bytes(v >> 8 for v in im.getdata()); c = 1\n"
    "elif im.mode in ('1', 'L', 'LA'):\n"
    "    data = im.convert('L').tobytes(); c = 1\n"
    "else:\n"
    "    data = im.convert('RGB').tobytes(); c = 3\n"
    "print(c, im.size[1], im.size[0], data.hex())\n";

/* Pillow's resize of a file (as L or RGB) to h x w with filter f. */
static const char *pillow_resize =
    "import sys, warnings\n"
    "warnings.simplefilter('ignore')\n"
    "from PIL import Image\n"
    "im = Image.open(sys.argv[1])\n"
    "im = im.convert('RGB' if im.mode in ('RGB', 'RGBA', 'P') else 'L')\n"
    "h, w = int(sys.argv[2]), int(sys.argv[3])\n"
    "f = {'bilinear': Image.BILINEAR, 'box': Image.BOX}[sys.argv[4]]\n"
    "r = im.resize((w, h), f)\n"
    "c = 3 if r.mode == 'RGB' else 1\n"
    "print(c, h, w, r.tobytes().hex())\n";

/* Runs a Pillow script on args; fills px (interleaved) and the shape. */
static int run_pillow(const char *script, const char *args, int *c, int *h,
                      int *w, unsigned char **px)
{
    char spath[512], cmd[2048];
    pathf(spath, sizeof spath, "pillow.py");
    if (!write_text("pillow.py", script)) return 0;
    snprintf(cmd, sizeof cmd, PYTHON " %s %s", spath, args);
    FILE *p = popen(cmd, "r");
    if (!p) return 0;
    static char line[1 << 20];
    int ok = fgets(line, sizeof line, p) != NULL;
    pclose(p);
    int off = 0;
    if (!ok || sscanf(line, "%d %d %d %n", c, h, w, &off) != 3) return 0;
    size_t n = (size_t)*c * *h * *w;
    *px = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(line + off + 2 * i, "%2x", &v) != 1) {
            free(*px);
            return 0;
        }
        (*px)[i] = (unsigned char)v;
    }
    return 1;
}

/* The resampling formula, straight: per axis, area average when the
 * axis shrinks, bilinear with pixel centres aligned when it grows; the
 * 2-D weight is the product. */
static double axis_w(int in, int out, int i, int j)
{
    if (in > out) {
        double lo = (double)i * in / out, hi = (double)(i + 1) * in / out;
        double l = fmax(lo, j), r = fmin(hi, j + 1.0);
        return r > l ? (r - l) * out / in : 0;
    }
    double src = (i + 0.5) * in / out - 0.5;
    if (src < 0) src = 0;
    if (src > in - 1) src = in - 1;
    double d = fabs(src - j);
    return d < 1 ? 1 - d : 0;
}

static double ref_resize(const unsigned char *plane, int ih, int iw, int oh,
                         int ow, int y, int x)
{
    double v = 0;
    for (int j = 0; j < ih; j++) {
        double wy = axis_w(ih, oh, y, j);
        if (wy == 0) continue;
        for (int l = 0; l < iw; l++) v += wy * axis_w(iw, ow, x, l) *
                                         plane[(size_t)j * iw + l];
    }
    return v;
}

/* ----------------------------------------------------------- decoding */

static const struct {
    const char *name;
    int ct, bd, jpeg_c;
} files[] = {
    {"grey8.png", PNG_COLOR_TYPE_GRAY, 8, 0},
    {"grey1.png", PNG_COLOR_TYPE_GRAY, 1, 0},
    {"grey16.png", PNG_COLOR_TYPE_GRAY, 16, 0},
    {"rgb8.png", PNG_COLOR_TYPE_RGB, 8, 0},
    {"rgb16.png", PNG_COLOR_TYPE_RGB, 16, 0},
    {"rgba.png", PNG_COLOR_TYPE_RGBA, 8, 0},
    {"greya.png", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
    {"palette.png", PNG_COLOR_TYPE_PALETTE, 8, 0},
    {"palette4.png", PNG_COLOR_TYPE_PALETTE, 4, 0},
    {"grey.jpg", 0, 0, 1},
    {"colour.jpg", 0, 0, 3},
};
enum { NFILES = sizeof files / sizeof files[0], W = 7, H = 5 };

static void write_decode_files(void)
{
    mkdirs("dec");
    for (int i = 0; i < NFILES; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "dec/%s", files[i].name);
        int ok = files[i].jpeg_c ? write_jpeg(rel, W, H, files[i].jpeg_c, i)
                                 : write_png(rel, W, H, files[i].ct,
                                             files[i].bd, i);
        CHECK(ok, "writing %s", rel);
    }
}

static void test_decode_against_pillow(void)
{
    write_decode_files();
    if (!have_pillow()) {
        SKIP("no Pillow (" PYTHON " -c 'import PIL' fails; Debian's "
             "python3-pil)");
        return;
    }
    for (int i = 0; i < NFILES; i++) {
        char path[512], rel[128];
        snprintf(rel, sizeof rel, "dec/%s", files[i].name);
        pathf(path, sizeof path, rel);
        size_t len;
        unsigned char *buf = read_all(path, &len);
        l2rw__image im;
        int colour = -1;
        CHECK_OK(l2rw__image_decode(buf, len, path, &im, &colour));
        free(buf);
        int c, h, w;
        unsigned char *ref;
        CHECK(run_pillow(pillow_dump, path, &c, &h, &w, &ref),
              "pillow on %s", rel);
        CHECK(im.c == c && im.h == h && im.w == w && colour == (c == 3),
              "%s: %dx%dx%d colour %d, Pillow %dx%dx%d", rel, im.c, im.h,
              im.w, colour, c, h, w);
        if (im.c != c || im.h != h || im.w != w) {
            l2rw__image_free(&im);
            free(ref);
            continue;
        }
        int maxd = 0;
        for (size_t p = 0; p < (size_t)c * h * w; p++) {
            int d = abs((int)im.px[p] - (int)ref[p]);
            if (d > maxd) maxd = d;
        }
        /* Debian's Pillow decodes JPEG with the same libjpeg-turbo and
         * default settings: exact as PNG is. */
        CHECK(maxd == 0, "%s: pixels differ from Pillow's by up to %d", rel,
              maxd);
        l2rw__image_free(&im);
        free(ref);
    }
}

static void test_bad_bytes(void)
{
    l2rw__image im;
    const unsigned char text[] = "hello, not an image";
    CHECK(l2rw__image_decode(text, sizeof text, "notes.txt", &im, NULL) ==
              L2RW_ERR_FORMAT,
          "text is not an image");
    CHECK(strstr(l2rw_last_error(), "notes.txt") != NULL, "%s",
          l2rw_last_error());
    char path[512];
    pathf(path, sizeof path, "dec/rgb8.png");
    size_t len;
    unsigned char *buf = read_all(path, &len);
    /* Truncated PNG and JPEG, and a PNG with its data bytes flipped. */
    CHECK(buf && l2rw__image_decode(buf, len / 2, "half.png", &im, NULL) ==
                     L2RW_ERR_FORMAT,
          "truncated PNG");
    CHECK(strstr(l2rw_last_error(), "half.png") != NULL, "%s",
          l2rw_last_error());
    for (size_t i = 40; buf && i < len - 12; i++) buf[i] ^= 0x5a;
    CHECK(buf && l2rw__image_decode(buf, len, "flip.png", &im, NULL) ==
                     L2RW_ERR_FORMAT,
          "corrupt PNG");
    free(buf);
    pathf(path, sizeof path, "dec/colour.jpg");
    buf = read_all(path, &len);
    CHECK(buf && l2rw__image_decode(buf, len / 2, "half.jpg", &im, NULL) ==
                     L2RW_ERR_FORMAT,
          "truncated JPEG is bad, not grey-filled");
    free(buf);
}

/* ------------------------------------------------------------ resizing */

static void check_resize(const char *rel, int oh, int ow, int pillow,
                         const char *filter)
{
    char path[512];
    pathf(path, sizeof path, rel);
    size_t len;
    unsigned char *buf = read_all(path, &len);
    l2rw__image im;
    CHECK_OK(l2rw__image_decode(buf, len, path, &im, NULL));
    free(buf);
    const int c = im.c;
    unsigned char *out = malloc((size_t)c * oh * ow);
    unsigned char *plane = malloc((size_t)im.h * im.w);
    CHECK_OK(l2rw__image_convert(&im, c, oh, ow, out));
    double worst = 0;
    for (int k = 0; k < c; k++) {
        for (int p = 0; p < im.h * im.w; p++) plane[p] = im.px[p * c + k];
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double r = ref_resize(plane, im.h, im.w, oh, ow, y, x);
                double d = fabs(out[((size_t)k * oh + y) * ow + x] - r);
                if (d > worst) worst = d;
            }
    }
    /* Rounded to nearest: within half a level of the exact value. */
    CHECK(worst <= 0.5 + 1e-9, "%s to %dx%d: off the formula by %.3f", rel,
          oh, ow, worst);
    int pc, ph, pw;
    unsigned char *ref;
    char args[600];
    snprintf(args, sizeof args, "%s %d %d %s", path, oh, ow, filter);
    if (pillow && run_pillow(pillow_resize, args, &pc, &ph, &pw, &ref)) {
        int maxd = 0;
        for (int k = 0; k < c && pc == c; k++)
            for (int p = 0; p < oh * ow; p++) {
                int d = abs((int)out[(size_t)k * oh * ow + p] -
                            (int)ref[(size_t)p * c + k]);
                if (d > maxd) maxd = d;
            }
        /* Pillow rounds between its two passes (and uses fixed point). */
        CHECK(pc == c && maxd <= 1, "%s to %dx%d: Pillow's %s differs by "
              "%d", rel, oh, ow, filter, maxd);
        free(ref);
    }
    l2rw__image_free(&im);
    free(out);
    free(plane);
}

static void test_resize(void)
{
    CHECK(write_png("dec/big.png", 12, 10, PNG_COLOR_TYPE_RGB, 8, 7),
          "big.png");
    int pil = have_pillow();
    /* Down (area), up (bilinear), mixed, non-integer factors. */
    check_resize("dec/big.png", 5, 4, 0, "box");
    check_resize("dec/big.png", 23, 17, pil, "bilinear");
    check_resize("dec/big.png", 4, 30, 0, "box");
    check_resize("dec/grey8.png", 11, 3, 0, "box");
    check_resize("dec/grey8.png", 5, 7, 0, "box"); /* same size: copy */
    /* Integer downscale factors: Pillow's BOX is the area average. */
    check_resize("dec/big.png", 5, 6, pil, "box");
    check_resize("dec/big.png", 2, 3, pil, "box");
    if (!pil) SKIP("no Pillow: resizing checked against the formula only");
}

/* -------------------------------------------------------------- folders */

static void load(const char *spec, l2rw_dataset *tr, l2rw_dataset *te,
                 l2rw_sources *src, l2rw_status want)
{
    l2rw_status s = l2rw__data_load(spec, tr, te, src, NULL, NULL);
    CHECK(s == want, "%s -> %s (%s)", spec, l2rw_strerror(s),
          l2rw_last_error());
}

static void spec_of(char *out, size_t n, const char *fmt, const char *a,
                    const char *b)
{
    char pa[512], pb[512];
    pathf(pa, sizeof pa, a);
    pathf(pb, sizeof pb, b ? b : a);
    snprintf(out, n, fmt, pa, pb);
}

/* tree/{b_dog,a_cat,c_bird}: flat images of value 10*class + index, one
 * corrupt file, one text file, one nested folder, a dot file. */
static void write_tree(void)
{
    mkdirs("tree/b_dog/sub");
    mkdirs("tree/a_cat");
    mkdirs("tree/c_bird");
    CHECK(write_flat("tree/a_cat/1.png", 7, 5, 10) &&
              write_flat("tree/a_cat/2.png", 7, 5, 11) &&
              write_flat("tree/b_dog/x.png", 7, 5, 20) &&
              write_flat("tree/b_dog/sub/y.png", 7, 5, 21) &&
              write_flat("tree/c_bird/z.png", 7, 5, 30) &&
              write_text("tree/c_bird/bad.png", "\x89PNG\r\n\x1a\ngarbage") &&
              write_text("tree/c_bird/notes.txt", "not an image\n") &&
              write_text("tree/c_bird/.hidden", "dot files are ignored") &&
              write_text("tree/README", "top-level files are ignored"),
          "writing the tree");
}

static void test_folder_classes(void)
{
    write_tree();
    char spec[1200];
    spec_of(spec, sizeof spec, "folder:%s,frac=0,cache=0", "tree", NULL);
    l2rw_dataset tr, te;
    l2rw_sources src;
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(tr.n == 5 && tr.c == 1 && tr.h == 5 && tr.w == 7 &&
              tr.classes == 3 && te.n == 0,
          "n %d c %d %dx%d classes %d test %d", tr.n, tr.c, tr.h, tr.w,
          tr.classes, te.n);
    CHECK(src.classes == 3 && src.class_names &&
              !strcmp(src.class_names[0], "a_cat") &&
              !strcmp(src.class_names[1], "b_dog") &&
              !strcmp(src.class_names[2], "c_bird"),
          "class names in byte order");
    static const int want_y[] = {0, 0, 1, 1, 2};
    static const int want_v[] = {10, 11, 21, 20, 30}; /* sub/ < x.png */
    for (int i = 0; i < tr.n && i < 5; i++) {
        CHECK(tr.y[i] == want_y[i], "label %d: %d", i, tr.y[i]);
        CHECK(fabsf(tr.x[i * 35] * 255.0f - want_v[i]) < 1e-3f,
              "example %d is %g", i, tr.x[i * 35] * 255.0);
    }
    CHECK(src.n_train == 5 && src.train_files &&
              strstr(src.train_files[2], "b_dog/sub/y.png") &&
              strstr(src.train_files[4], "c_bird/z.png"),
          "train_files by id");
    CHECK(src.n_bad == 2 && strstr(src.bad_files[0], "c_bird/bad.png") &&
              strstr(src.bad_reasons[0], "corrupt PNG") &&
              strstr(src.bad_files[1], "notes.txt") &&
              strstr(src.bad_reasons[1], "not a PNG or JPEG"),
          "bad files listed with why (%d)", src.n_bad);
    CHECK(src.n_decoded == 7 && src.n_cached == 0, "decoded %ld cached %ld",
          src.n_decoded, src.n_cached);
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);

    /* on-bad=fail: the first bad file is the error. */
    spec_of(spec, sizeof spec, "folder:%s,cache=0,on-bad=fail", "tree",
            NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_FORMAT);
    CHECK(strstr(l2rw_last_error(), "c_bird/bad.png") != NULL, "%s",
          l2rw_last_error());
    /* A held-out part by default (frac 0.2 of 5 = 1). */
    spec_of(spec, sizeof spec, "folder:%s,cache=0", "tree", NULL);
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(tr.n == 4 && te.n == 1 && src.test_files == NULL, "held out");
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
}

static void test_folder_errors(void)
{
    char spec[1200];
    l2rw_dataset tr, te;
    l2rw_sources src;
    mkdirs("empty/a");
    mkdirs("empty/b");
    CHECK(write_flat("empty/a/1.png", 4, 4, 1), "write");
    spec_of(spec, sizeof spec, "folder:%s,cache=0", "empty", NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_FORMAT);
    CHECK(strstr(l2rw_last_error(), "empty/b: empty class folder"), "%s",
          l2rw_last_error());
    /* Sizes differ: the error names the file and suggests a size. */
    mkdirs("sizes/a");
    CHECK(write_flat("sizes/a/1.png", 4, 4, 1) &&
              write_flat("sizes/a/2.png", 5, 4, 1),
          "write");
    spec_of(spec, sizeof spec, "folder:%s,cache=0,frac=0", "sizes", NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_SHAPE);
    CHECK(strstr(l2rw_last_error(), "sizes/a/2.png") &&
              strstr(l2rw_last_error(), "--image-size"),
          "%s", l2rw_last_error());
    spec_of(spec, sizeof spec, "folder:%s,cache=0,frac=0,size=3x6",
            "sizes", NULL);
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(tr.n == 2 && tr.h == 3 && tr.w == 6, "resized %dx%d", tr.h, tr.w);
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
    /* Options that are not for folders, and bad values. */
    spec_of(spec, sizeof spec, "folder:%s,size=0x3", "sizes", NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_ARG);
    spec_of(spec, sizeof spec, "folder:%s,root=/x", "sizes", NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_ARG);
    spec_of(spec, sizeof spec, "folder:%s,channels=2", "sizes", NULL);
    load(spec, &tr, &te, &src, L2RW_ERR_ARG);
}

static void test_test_folder(void)
{
    char spec[1200];
    l2rw_dataset tr, te;
    l2rw_sources src;
    mkdirs("tt/b_dog");
    CHECK(write_flat("tt/b_dog/q.png", 7, 5, 99), "write");
    spec_of(spec, sizeof spec, "folder:%s;%s,cache=0", "tree", "tt");
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(te.n == 1 && te.y[0] == 1 && te.classes == 3 && src.n_test == 1 &&
              strstr(src.test_files[0], "tt/b_dog/q.png"),
          "test folder with a class of the training folder");
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
    /* A test folder whose class folders are all empty: no test data. */
    mkdirs("tt0/a_cat");
    spec_of(spec, sizeof spec, "folder:%s;%s,cache=0", "tree", "tt0");
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(te.n == 0 && tr.n == 5, "empty test folder: %d", te.n);
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
    spec_of(spec, sizeof spec, "folder:%s;%s,cache=0", "tree", "tt");
    mkdirs("tt/zebra");
    CHECK(write_flat("tt/zebra/q.png", 7, 5, 99), "write");
    load(spec, &tr, &te, &src, L2RW_ERR_LABEL);
    CHECK(strstr(l2rw_last_error(), "'zebra'"), "%s", l2rw_last_error());
}

static void test_channels(void)
{
    char spec[1200];
    l2rw_dataset tr, te;
    l2rw_sources src;
    /* Grey first, colour second: the set is colour (any colour file). */
    mkdirs("mix/a");
    CHECK(write_flat("mix/a/1.png", 7, 5, 77) &&
              write_png("mix/a/2.png", 7, 5, PNG_COLOR_TYPE_RGB, 8, 3),
          "write");
    spec_of(spec, sizeof spec, "folder:%s,cache=0,frac=0", "mix", NULL);
    load(spec, &tr, &te, &src, L2RW_OK);
    CHECK(tr.c == 3, "channels %d", tr.c);
    for (int k = 0; k < 3 && tr.c == 3; k++)
        CHECK(fabsf(tr.x[k * 35] * 255 - 77) < 1e-3f, "grey replicated");
    float rgb[3] = {0};
    for (int k = 0; k < 3 && tr.c == 3; k++) rgb[k] = tr.x[105 + k * 35];
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
    spec_of(spec, sizeof spec, "folder:%s,cache=0,frac=0,channels=1", "mix",
            NULL);
    load(spec, &tr, &te, &src, L2RW_OK);
    /* BT.601 luma in Pillow's fixed point. */
    int r = (int)lrintf(rgb[0] * 255), g = (int)lrintf(rgb[1] * 255),
        b = (int)lrintf(rgb[2] * 255);
    int want = (19595 * r + 38470 * g + 7471 * b + 0x8000) >> 16;
    CHECK(tr.c == 1 && fabsf(tr.x[35] * 255 - want) < 1e-3f,
          "luma %g want %d", tr.x[35] * 255.0, want);
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);
}

/* ---------------------------------------------------------------- lists */

static void test_list(void)
{
    char spec[1200], text[2048], a[512];
    l2rw_dataset tr, te;
    l2rw_sources src;
    pathf(a, sizeof a, "tree/a_cat/1.png");
    snprintf(text, sizeof text,
             "# Clothing1M style\n"
             "\n"
             "tree/b_dog/x.png  dog\r\n"
             "%s cat\n"
             "tree/c_bird/z.png\tbird\n"
             "  tree/a_cat/2.png 3  \n", a);
    CHECK(write_text("names.txt", text), "write");
    spec_of(spec, sizeof spec, "list:%s,cache=0,frac=0", "names.txt", NULL);
    load(spec, &tr, &te, &src, L2RW_OK);
    /* Any non-integer label: all are names ("3" too), sorted. */
    CHECK(tr.n == 4 && tr.classes == 4 && src.class_names &&
              !strcmp(src.class_names[0], "3") &&
              !strcmp(src.class_names[1], "bird") &&
              !strcmp(src.class_names[2], "cat") &&
              !strcmp(src.class_names[3], "dog"),
          "names %d", tr.classes);
    CHECK(tr.n == 4 && tr.y[0] == 3 && tr.y[1] == 2 && tr.y[2] == 1 &&
              tr.y[3] == 0, "labels by name");
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);

    /* Integer labels; root= for relative paths; a test list. */
    CHECK(write_text("sub_idx.txt", "a_cat/1.png 0\nb_dog/x.png 2\n"
                                    "c_bird/z.png 1\n") &&
              write_text("sub_test.txt", "a_cat/2.png 1\n"),
          "write");
    char root[512], sp2[2048];
    pathf(root, sizeof root, "tree");
    spec_of(spec, sizeof spec, "list:%s;%s", "sub_idx.txt", "sub_test.txt");
    snprintf(sp2, sizeof sp2, "%s,root=%s,cache=0", spec, root);
    load(sp2, &tr, &te, &src, L2RW_OK);
    CHECK(tr.n == 3 && tr.classes == 3 && tr.y[1] == 2 && te.n == 1 &&
              te.y[0] == 1 && src.class_names == NULL && src.n_test == 1,
          "integer labels");
    l2rw_dataset_free(&tr);
    l2rw_dataset_free(&te);
    l2rw_sources_free(&src);

    /* Errors name the list file and line. */
    CHECK(write_text("missing.txt", "# c\na_cat/1.png 0\nnope.png 1\n"),
          "write");
    spec_of(spec, sizeof spec, "list:%s", "missing.txt", NULL);
    snprintf(sp2, sizeof sp2, "%s,root=%s,cache=0", spec, root);
    load(sp2, &tr, &te, &src, L2RW_ERR_IO);
    CHECK(strstr(l2rw_last_error(), "missing.txt:3:") &&
              strstr(l2rw_last_error(), "nope.png"),
          "%s", l2rw_last_error());
    CHECK(write_text("nolabel.txt", "a_cat/1.png\n"), "write");
    spec_of(spec, sizeof spec, "list:%s", "nolabel.txt", NULL);
    snprintf(sp2, sizeof sp2, "%s,root=%s,cache=0", spec, root);
    load(sp2, &tr, &te, &src, L2RW_ERR_FORMAT);
    CHECK(strstr(l2rw_last_error(), "nolabel.txt:1:"), "%s",
          l2rw_last_error());
    CHECK(write_text("badtest.txt", "a_cat/2.png cat\n"), "write");
    spec_of(spec, sizeof spec, "list:%s;%s", "sub_idx.txt", "badtest.txt");
    snprintf(sp2, sizeof sp2, "%s,root=%s,cache=0", spec, root);
    load(sp2, &tr, &te, &src, L2RW_ERR_LABEL);
    CHECK(strstr(l2rw_last_error(), "badtest.txt:1:"), "%s",
          l2rw_last_error());
    spec_of(spec, sizeof spec, "list:%s;%s", "names.txt", "badtest.txt");
    snprintf(sp2, sizeof sp2, "%s,root=%s,cache=0", spec, root);
    /* names.txt's relative paths are under tmp, not root: a file error */
    load(sp2, &tr, &te, &src, L2RW_ERR_IO);
}

/* ---------------------------------------------------------------- cache */

static int count_cache_files(const char *rel)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "ls -a %s/%s | grep -c '^.l2rw-cache-'", tmp,
             rel);
    FILE *p = popen(cmd, "r");
    int n = 0;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

static void load_cached(const char *spec, l2rw_sources *src,
                        l2rw_dataset *tr)
{
    l2rw_dataset te;
    load(spec, tr, &te, src, L2RW_OK);
    l2rw_dataset_free(&te);
}

static int same_pixels(const l2rw_dataset *a, const l2rw_dataset *b)
{
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w &&
           !memcmp(a->x, b->x, (size_t)a->n * l2rw_dataset_dim(a) * 4) &&
           !memcmp(a->y, b->y, (size_t)a->n * 4);
}

static void test_cache(void)
{
    char spec[1200], cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -r %s/tree %s/ctree", tmp, tmp);
    CHECK(system(cmd) == 0, "copy tree");
    spec_of(spec, sizeof spec, "folder:%s,frac=0,size=4x6", "ctree", NULL);
    l2rw_sources s1, s2;
    l2rw_dataset d1, d2;
    load_cached(spec, &s1, &d1);
    CHECK(s1.n_decoded == 7 && s1.n_cached == 0 && !s1.cache_error,
          "first load decodes (%ld, %ld, %s)", s1.n_decoded, s1.n_cached,
          s1.cache_error ? s1.cache_error : "");
    CHECK(count_cache_files("ctree") == 1, "one cache file next to the data");
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 0 && s2.n_cached == 7, "second load from the "
          "cache (%ld decoded)", s2.n_decoded);
    CHECK(same_pixels(&d1, &d2) && s2.n_bad == 2 &&
              !strcmp(s2.bad_reasons[0], s1.bad_reasons[0]) &&
              !strcmp(s2.train_files[3], s1.train_files[3]),
          "the cache gives the same data, names and bad files");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);

    /* A modified file (new mtime), an added file, a removed one. */
    char p[512];
    pathf(p, sizeof p, "ctree/a_cat/1.png");
    struct timespec ts[2] = {{0, UTIME_NOW}, {1234567, 5}};
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0, "touch");
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 7 && same_pixels(&d1, &d2), "touched: rebuilt");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    CHECK(write_flat("ctree/a_cat/3.png", 7, 5, 12), "add");
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 8 && d2.n == 6, "added: rebuilt with %d", d2.n);
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    CHECK(unlink(p) == 0, "remove");
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 7 && d2.n == 5, "removed: rebuilt with %d", d2.n);
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_cached == 7, "and cached again");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    CHECK(count_cache_files("ctree") == 1, "the stale cache was replaced");

    /* A corrupt cache is ignored and rebuilt. */
    snprintf(cmd, sizeof cmd, "for f in %s/ctree/.l2rw-cache-*; do printf "
             "'\\377\\377\\377' | dd of=$f bs=1 seek=60 conv=notrunc "
             "2>/dev/null; done", tmp);
    CHECK(system(cmd) == 0, "corrupt the cache");
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 7 && s2.n_cached == 0, "corrupt cache: rebuilt");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_cached == 7, "and rewritten");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);

    /* Another size is another cache. */
    spec_of(spec, sizeof spec, "folder:%s,frac=0,size=3x3", "ctree", NULL);
    load_cached(spec, &s2, &d2);
    CHECK(s2.n_decoded == 7 && d2.h == 3, "size is in the key");
    l2rw_dataset_free(&d2);
    l2rw_sources_free(&s2);
    l2rw_dataset_free(&d1);
    l2rw_sources_free(&s1);
}

/* When the cache cannot be written next to the data, it goes to
 * $XDG_CACHE_HOME/l2rw. A read-only folder would not stop root, so the
 * cache's own name is taken by a folder instead. */
static void test_cache_elsewhere(void)
{
    char spec[1200], cmd[1400], xdg[512];
    snprintf(cmd, sizeof cmd, "cp -r %s/tree %s/rtree", tmp, tmp);
    CHECK(system(cmd) == 0, "copy tree");
    pathf(xdg, sizeof xdg, "xdg");
    spec_of(spec, sizeof spec, "folder:%s,frac=0", "rtree", NULL);
    l2rw_sources s;
    l2rw_dataset d;
    load_cached(spec, &s, &d);
    l2rw_dataset_free(&d);
    l2rw_sources_free(&s);
    snprintf(cmd, sizeof cmd, "cd %s/rtree && for f in .l2rw-cache-*; do "
             "rm $f && mkdir $f; done", tmp);
    CHECK(system(cmd) == 0 && count_cache_files("rtree") == 1, "block");
    setenv("XDG_CACHE_HOME", xdg, 1);
    load_cached(spec, &s, &d);
    CHECK(s.n_decoded == 7 && !s.cache_error, "decoded, cached elsewhere "
          "(%s)", s.cache_error ? s.cache_error : "");
    l2rw_dataset_free(&d);
    l2rw_sources_free(&s);
    load_cached(spec, &s, &d);
    CHECK(s.n_cached == 7, "read from $XDG_CACHE_HOME/l2rw");
    l2rw_dataset_free(&d);
    l2rw_sources_free(&s);
    snprintf(cmd, sizeof cmd, "ls %s/l2rw/l2rw-cache-*.bin >/dev/null", xdg);
    CHECK(system(cmd) == 0, "the cache file is in %s/l2rw", xdg);
    unsetenv("XDG_CACHE_HOME");
}

/* ------------------------------------------------------------- threads */

static void test_threads(void)
{
    mkdirs("many/a");
    mkdirs("many/b");
    for (int i = 0; i < 40; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "many/%c/%02d.%s", i % 2 ? 'b' : 'a', i,
                 i % 3 ? "png" : "jpg");
        CHECK(i % 3 ? write_png(rel, 9 + i % 4, 8, PNG_COLOR_TYPE_RGB, 8, i)
                    : write_jpeg(rel, 10, 7 + i % 3, 3, i),
              "write %s", rel);
    }
    char spec[1200];
    spec_of(spec, sizeof spec, "folder:%s,frac=0,cache=0,size=6x5", "many",
            NULL);
    l2rw_dataset d[2], te;
    l2rw_sources s;
    for (int t = 0; t < 2; t++) {
        l2rw_set_threads(t + 1);
        load(spec, &d[t], &te, &s, L2RW_OK);
        l2rw_dataset_free(&te);
        l2rw_sources_free(&s);
    }
    l2rw_set_threads(0);
    CHECK(d[0].n == 40 && same_pixels(&d[0], &d[1]),
          "1 and 2 threads decode the same pixels");
    l2rw_dataset_free(&d[0]);
    l2rw_dataset_free(&d[1]);
}

/* The pipeline: class names reach the audit and the data.json text. */
static void test_prepare_audit(void)
{
    char spec[1200];
    spec_of(spec, sizeof spec, "folder:%s,frac=0,size=4x6", "ctree", NULL);
    l2rw_data_cfg cfg = l2rw_data_cfg_default();
    cfg.data = spec;
    cfg.val_per_class = 0;
    cfg.imbalance = "2,0:0.5";
    l2rw_data d;
    CHECK_OK(l2rw_data_prepare(&d, &cfg));
    CHECK(d.audit.class_names && d.audit.classes == 2 &&
              !strcmp(d.audit.class_names[0], "c_bird") &&
              !strcmp(d.audit.class_names[1], "a_cat") &&
              d.sources.classes == 2,
          "names follow the imbalance's relabelling");
    char path[512];
    pathf(path, sizeof path, "data.json");
    CHECK_OK(l2rw_audit_save(&d.audit, path, L2RW_AUDIT_JSON));
    size_t len;
    char *json = (char *)read_all(path, &len);
    CHECK(json && strstr(json, "\"class_names\": [\"c_bird\", \"a_cat\"]") &&
              strstr(json, "\"cache_used\": true"),
          "data.json: %s", json ? json : "(none)");
    free(json);
    l2rw_data_free(&d);
}

/* ------------------------------------------------------- model names */

static void test_model_class_names(void)
{
    l2rw_net *net, *back;
    char path[512];
    pathf(path, sizeof path, "named.l2rw");
    CHECK_OK(l2rw_net_create(&net, "mlp:4", 1, 2, 2, 3, 4, 1));
    const char *names[] = {"a_cat", "b dog", "\xc3\xa9l\xc3\xa9phant"};
    CHECK(l2rw_net_set_class_names(net, names, 2) == L2RW_ERR_ARG,
          "names must match the class count");
    CHECK(l2rw_net_class_name(net, 0) == NULL, "no names yet");
    CHECK_OK(l2rw_net_set_class_names(net, names, 3));
    CHECK_OK(l2rw_net_save(net, path));
    CHECK_OK(l2rw_net_load_new(&back, path, 4));
    for (int k = 0; k < 3 && back; k++)
        CHECK(l2rw_net_class_name(back, k) &&
                  !strcmp(l2rw_net_class_name(back, k), names[k]),
              "name %d", k);
    CHECK(back && l2rw_net_class_name(back, 3) == NULL, "out of range");
    l2rw_net_free(back);

    /* A version 1 file (no names section) still loads, without names. */
    CHECK_OK(l2rw_net_set_class_names(net, NULL, 0));
    CHECK_OK(l2rw_net_save(net, path));
    size_t len;
    unsigned char *b = read_all(path, &len);
    CHECK(b && len > 20 && b[8] == 2, "version 2 written");
    if (!b || len <= 20) return;
    b[8] = 1;
    size_t body = len - 8; /* without the empty names count and the CRC */
    uint32_t crc = l2rw_crc32(0, b, body);
    for (int i = 0; i < 4; i++) b[body + i] = (unsigned char)(crc >> (8 * i));
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, body + 4, fp) == body + 4, "write v1");
    if (fp) fclose(fp);
    free(b);
    CHECK_OK(l2rw_net_load_new(&back, path, 4));
    CHECK(back && l2rw_net_class_name(back, 0) == NULL, "v1: no names");
    CHECK_OK(l2rw_net_set_class_names(net, names, 3));
    CHECK_OK(l2rw_net_load(net, path));
    CHECK(l2rw_net_class_name(net, 0) == NULL, "loaded over: names gone");
    l2rw_net_free(back);
    l2rw_net_free(net);
}

/* The command line end to end: --image-size, class names in data.json
 * and in the saved model. */
static void test_cli_train(void)
{
    if (access(TU_CLI, X_OK) != 0) {
        SKIP("%s not built", TU_CLI);
        return;
    }
    char out[512], cmd[4096], dir[512];
    pathf(out, sizeof out, "run");
    pathf(dir, sizeof dir, "many");
    snprintf(cmd, sizeof cmd, "%s train --data folder:%s "
             "--image-size 8x8 --model mlp:8 --steps 3 --val-per-class 2 "
             "--batch 8 --eval-every 0 --no-plots --quiet --out %s "
             ">%s.log 2>&1", TU_CLI, dir, out, out);
    CHECK(system(cmd) == 0, "%s", cmd);
    char path[600];
    snprintf(path, sizeof path, "%s/data.json", out);
    size_t len;
    char *json = (char *)read_all(path, &len);
    CHECK(json && strstr(json, "\"class_names\": [\"a\", \"b\"]"),
          "data.json class names");
    free(json);
    snprintf(path, sizeof path, "%s/model.l2rw", out);
    l2rw_net *net = NULL;
    CHECK_OK(l2rw_net_load_new(&net, path, 1));
    CHECK(net && l2rw_net_class_name(net, 1) &&
              !strcmp(l2rw_net_class_name(net, 1), "b"),
          "model class names");
    int c, h, w;
    if (net) l2rw_net_input_shape(net, &c, &h, &w);
    CHECK(net && c == 3 && h == 8 && w == 8, "input 3x8x8");
    l2rw_net_free(net);
    snprintf(cmd, sizeof cmd, "%s train --data csv:x.csv "
             "--image-size 8x8 --steps 1 >/dev/null 2>&1", TU_CLI);
    CHECK(system(cmd) != 0, "--image-size needs image data");
}

/* --image-size on a spec that has a size already (a resumed run's)
 * replaces it; a spec that does not fit the buffer is refused. */
static void test_spec_set_size(void)
{
    char out[64];
    CHECK_OK(l2rw_data_spec_set_size("folder:/d;/t,frac=0", "8x6", out,
                                     sizeof out));
    CHECK(!strcmp(out, "folder:/d;/t,frac=0,size=8x6"), "added: %s", out);
    CHECK_OK(l2rw_data_spec_set_size("list:/l,size=4x4,root=/r", "8x6", out,
                                     sizeof out));
    CHECK(!strcmp(out, "list:/l,root=/r,size=8x6"), "replaced: %s", out);
    CHECK(l2rw_data_spec_set_size("folder:/a/long/path", "8x6", out, 20) ==
              L2RW_ERR_ARG,
          "a spec longer than the buffer is refused");
    CHECK(l2rw_data_spec_set_size("csv:/x.csv", "8x6", out, sizeof out) ==
              L2RW_ERR_ARG,
          "csv data take no image size");
}

int main(void)
{
    snprintf(tmp, sizeof tmp, "/tmp/l2rw-images-XXXXXX");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_decode_against_pillow);
    RUN(test_bad_bytes);
    RUN(test_resize);
    RUN(test_folder_classes);
    RUN(test_folder_errors);
    RUN(test_test_folder);
    RUN(test_channels);
    RUN(test_list);
    RUN(test_cache);
    RUN(test_cache_elsewhere);
    RUN(test_threads);
    RUN(test_prepare_audit);
    RUN(test_model_class_names);
    RUN(test_cli_train);
    RUN(test_spec_set_size);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "chmod -R u+w %s; rm -rf %s", tmp, tmp);
    if (system(cmd) != 0) printf("could not remove %s\n", tmp);
    return CHECK_DONE("test_images");
}

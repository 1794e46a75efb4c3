/*
 * Cortex-M7 conv2d (docs/integer-arithmetic.md, "conv2d"), any bits, sizes, strides and padding.
 *
 * im2col + the matrix engine of mpq_gemm_m7.c: an output pixel's column is its kh * kw input
 * taps unpacked to int16 (in_offset added) in the weights' [kh][kw][cin] order, padded taps as
 * zeros (padding is the real value zero); each column is reused by every output channel.
 * Scratch: as mpq_conv2d_ref (the work happens in mpq_m7_work, mpq_m7.h); a layer too large for
 * the work buffer runs mpq_conv2d_ref.
 */
#include "mpq_m7.h"

typedef struct {
    const mpq_dims_t *in;
    const uint8_t *x;
    const mpq_window_t *win;
    uint32_t out_w;
} conv_layer_t;

/* Tap (iy, ix) of the window: its cin values, zeros when it is padding. */
static void im2col_tap(const conv_layer_t *l, int32_t iy, int32_t ix, int16_t *col) {
    const mpq_dims_t *in = l->in;
    const uint32_t cin = in->c;
    if (iy < 0 || iy >= (int32_t)in->h || ix < 0 || ix >= (int32_t)in->w) {
        memset(col, 0, cin * sizeof(int16_t));
    } else if (in->bits == 8u && cin < 8u) { /* a stem's few channels: no word to unpack */
        const uint8_t *px = l->x + ((uint32_t)iy * in->w + (uint32_t)ix) * cin;
        for (uint32_t i = 0; i < cin; ++i) {
            col[i] = (int16_t)(px[i] + l->win->in_offset);
        }
    } else {
        mpq_m7_unpack_activations(l->x + ((uint32_t)iy * in->w + (uint32_t)ix) * mpq_row_bytes(cin, in->bits), cin,
                                  in->bits, l->win->in_offset, col);
    }
}

/* The column of one output pixel, a window row at a time. When pixels are whole bytes, a window
 * row inside the map is kw * cin consecutive packed values, unpacked in one go (a row above or
 * below the map is all zeros; at 8 bits inline, for a stem's many small windows); a row that
 * crosses the left or right edge goes tap by tap. */
static void conv_im2col(const void *layer, uint32_t pixel, int16_t *col) {
    const conv_layer_t *l = layer;
    const mpq_dims_t *in = l->in;
    const mpq_window_t *win = l->win;
    const uint32_t cin = in->c, run = (uint32_t)win->kw * cin;
    const int whole_bytes = (cin * in->bits) % 8u == 0u;
    const int32_t iy0 = (int32_t)((pixel / l->out_w) * win->sh) - win->pad_top;
    const int32_t ix0 = (int32_t)((pixel % l->out_w) * win->sw) - win->pad_left;
    const int inside_x = ix0 >= 0 && ix0 + (int32_t)win->kw <= (int32_t)in->w;
    if (inside_x && in->bits == 8u) { /* a stem's 8-bit rows (few channels, many pixels): unpacked inline */
        const uint32_t x_row = (uint32_t)in->w * cin, kh = win->kh;
        const int32_t in_offset = win->in_offset;
        /* window rows lo .. hi - 1 lie inside the map; those above and below are zeros */
        const uint32_t lo = iy0 < 0 ? (uint32_t)-iy0 : 0u;
        const uint32_t hi = iy0 + (int32_t)kh > (int32_t)in->h ? (uint32_t)((int32_t)in->h - iy0) : kh;
        if (lo > 0u) {
            memset(col, 0, lo * run * sizeof(int16_t));
        }
        const uint8_t *src = l->x + ((uint32_t)(iy0 + (int32_t)lo) * x_row + (uint32_t)ix0 * cin);
        for (uint32_t ky = lo; ky < hi; ++ky, src += x_row) {
            mpq_m7_unpack_at(src, run, 8u, 0, in_offset, col + ky * run);
        }
        if (hi < kh) {
            memset(col + hi * run, 0, (kh - hi) * run * sizeof(int16_t));
        }
        return;
    }
    for (uint32_t ky = 0; ky < win->kh; ++ky, col += run) {
        const int32_t iy = iy0 + (int32_t)ky;
        if (iy < 0 || iy >= (int32_t)in->h) {
            memset(col, 0, run * sizeof(int16_t));
        } else if (inside_x && whole_bytes) {
            const uint32_t first = ((uint32_t)iy * in->w + (uint32_t)ix0) * cin;
            mpq_m7_unpack_activations(l->x + first * in->bits / 8u, run, in->bits, win->in_offset, col);
        } else {
            for (uint32_t kx = 0; kx < win->kw; ++kx) {
                im2col_tap(l, iy, ix0 + (int32_t)kx, col + kx * cin);
            }
        }
    }
}

/* A stem's 8-bit map, unpacked once (in_offset added, padding as zeros) to int16 at the start of
 * the work buffer, as far as the windows reach: [map_h][map_w][cin]. */
typedef struct {
    const int16_t *map;
    uint32_t cin, map_row, run, kh, out_w, sh, sw; /* map_row = map_w * cin, run = kw * cin */
} stem_layer_t;

/* Bytes of the unpacked map of a layer whose windows reach map_h x map_w pixels (padding included). */
static uint32_t stem_map_bytes(const mpq_dims_t *in, const mpq_window_t *win, const mpq_dims_t *out) {
    const uint32_t map_h = ((uint32_t)out->h - 1u) * win->sh + win->kh, map_w = ((uint32_t)out->w - 1u) * win->sw + win->kw;
    return (map_h * map_w * in->c * (uint32_t)sizeof(int16_t) + 3u) & ~3u;
}

static void unpack_stem_map(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win, uint32_t map_h,
                            uint32_t map_w, int16_t *map) {
    const uint32_t cin = in->c, left = win->pad_left < map_w ? win->pad_left : map_w;
    const uint32_t inside = map_w - left < in->w ? map_w - left : in->w;
    for (uint32_t r = 0; r < map_h; ++r, map += map_w * cin) {
        const int32_t iy = (int32_t)r - win->pad_top;
        if (iy < 0 || iy >= (int32_t)in->h) {
            memset(map, 0, map_w * cin * sizeof(int16_t));
            continue;
        }
        memset(map, 0, left * cin * sizeof(int16_t));
        mpq_m7_unpack_activations(x + (uint32_t)iy * in->w * cin, inside * cin, 8u, win->in_offset, map + left * cin);
        memset(map + (left + inside) * cin, 0, (map_w - left - inside) * cin * sizeof(int16_t));
    }
}

/* A stem pixel's column: kh rows of run values copied from the map, two at a time. */
static void stem_im2col(const void *layer, uint32_t pixel, int16_t *col) {
    const stem_layer_t *l = layer;
    const int16_t *src = l->map + pixel / l->out_w * l->sh * l->map_row + pixel % l->out_w * l->sw * l->cin;
    for (uint32_t ky = 0; ky < l->kh; ++ky, src += l->map_row, col += l->run) {
        uint32_t i = 0;
        for (; i + 2u <= l->run; i += 2u) {
            mpq_word_t pair;
            memcpy(&pair, src + i, sizeof pair);
            memcpy(col + i, &pair, sizeof pair);
        }
        if (i < l->run) {
            col[i] = src[i];
        }
    }
}

void mpq_m7_conv2d(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                   const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                   const mpq_dims_t *out, void *y, void *scratch) {
    if (!mpq_m7_gemm_fits((uint32_t)win->kh * win->kw * in->c, out->c)) {
        mpq_ref_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
        return;
    }
    const uint32_t pixels = (uint32_t)out->h * out->w;
    if (win->kh == 1u && win->kw == 1u && win->pad_top == 0u && win->pad_left == 0u &&
        ((uint32_t)out->h - 1u) * win->sh < in->h && ((uint32_t)out->w - 1u) * win->sw < in->w) {
        /* a 1x1 window that never reaches padding (a strided shortcut): a pixel's column is one input pixel */
        const mpq_m7_pointwise_layer_t layer = {in, x, win->in_offset, out->w, win->sh, win->sw};
        mpq_m7_pointwise_gemm(&layer, pixels, w, w_bits, rq, out, y);
        return;
    }
    const uint32_t k = (uint32_t)win->kh * win->kw * in->c, map_bytes = stem_map_bytes(in, win, out);
    if (in->bits == 8u && in->c < 8u && map_bytes <= MPQ_M7_WORK_BYTES / 2u &&
        mpq_m7_chunk_channels_beside(k, out->c, map_bytes) >= 2u) {
        /* a stem (few 8-bit channels, many small windows) whose map fits beside the engine */
        int16_t *map = (int16_t *)(void *)mpq_m7_work;
        const uint32_t map_w = ((uint32_t)out->w - 1u) * win->sw + win->kw;
        unpack_stem_map(in, x, win, ((uint32_t)out->h - 1u) * win->sh + win->kh, map_w, map);
        const stem_layer_t layer = {map, in->c, map_w * in->c, (uint32_t)win->kw * in->c, win->kh, out->w, win->sh, win->sw};
        const mpq_m7_gemm_t g = {pixels, (uint32_t)win->kh * win->kw, in->c, w, w_bits, stem_im2col, &layer, map_bytes, NULL};
        mpq_m7_gemm(&g, rq, out, y);
        return;
    }
    const conv_layer_t layer = {in, x, win, out->w};
    const mpq_m7_gemm_t g = {pixels, (uint32_t)win->kh * win->kw, in->c, w, w_bits,
                             conv_im2col, &layer, 0u, NULL};
    mpq_m7_gemm(&g, rq, out, y);
}

int mpq_conv2d_m7(const mpq_dims_t *in, const uint8_t *x, const mpq_window_t *win,
                  const uint8_t *w, uint8_t w_bits, const mpq_requant_t *rq,
                  const mpq_dims_t *out, void *y, void *scratch) {
    if (mpq_conv2d_check(in, x, win, w, w_bits, rq, out, y, scratch) != MPQ_OK) {
        return MPQ_ERR_ARG;
    }
    mpq_m7_conv2d(in, x, win, w, w_bits, rq, out, y, scratch);
    return MPQ_OK;
}

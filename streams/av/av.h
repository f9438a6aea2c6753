// C helpers for package av. They batch several FFmpeg calls into one cgo
// call on the per-frame path and keep Go pointers out of C-owned arrays.
#ifndef VIGIL_AV_H
#define VIGIL_AV_H

#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libswscale/swscale.h>

// Error codes that are function-like macros, which cgo cannot expand.
extern const int vg_eof;
extern const int vg_enomem;
extern const int64_t vg_nopts;

// vg_scaler caches one swscale context. Unlike sws_getCachedContext it sets
// the ranges before sws_init_context, which is what selects swscale's
// conversion routines (see vg_dec_gray).
typedef struct vg_scaler {
	struct SwsContext *ctx;
	int sw, sh, sfmt, dw, dh, dfmt, flags, srange, drange;
} vg_scaler;

typedef struct vg_dec {
	AVCodecContext *ctx;
	AVPacket *pkt;
	AVBufferRef *buf;  // Annex-B input, reused while the decoder holds no reference to it
	AVFrame *tmp;      // receive target
	AVFrame *last;     // last picture, kept referenced for Gray/JPEG
	vg_scaler gray;
	vg_scaler yuv;
	int have_last;
	int got;       // the last decode/drain call produced a picture
	int errflags;  // its FF_DECODE_ERROR_* flags
	int draining; // sent EOF; avcodec_flush_buffers must run before new input
} vg_dec;

vg_dec *vg_dec_new(enum AVCodecID id, int skip_loop_filter, int *err);
void vg_dec_free(vg_dec *d);
uint8_t *vg_dec_buf(vg_dec *d, int need);
int vg_dec_decode(vg_dec *d, int size);
int vg_dec_drain(vg_dec *d);
int vg_dec_gray(vg_dec *d, int w, int h, int flags, uint8_t *dst);
int vg_dec_yuv420(vg_dec *d, int w, int h, int flags, uint8_t *y, uint8_t *cb, uint8_t *cr);

typedef struct vg_reader {
	AVFormatContext *fmt;
	AVBSFContext *bsf;
	AVPacket *pkt;
	AVStream *st;
	int index;
	const char *op;  // the step that failed, for error messages
} vg_reader;

int vg_reader_open(vg_reader *r, const char *path, char *errbuf, int errlen);
void vg_reader_close(vg_reader *r);
int vg_reader_next(vg_reader *r);
int64_t vg_rescale_ns(int64_t v, AVRational tb);

#endif

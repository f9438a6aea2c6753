#include "av.h"

#include <string.h>

#include <libavutil/opt.h>

const int vg_eof = AVERROR_EOF;
const int vg_enomem = AVERROR(ENOMEM);
const int64_t vg_nopts = AV_NOPTS_VALUE;

vg_dec *vg_dec_new(enum AVCodecID id, int skip_loop_filter, int *err) {
	const AVCodec *codec = avcodec_find_decoder(id);
	if (!codec) {
		*err = AVERROR_DECODER_NOT_FOUND;
		return NULL;
	}
	vg_dec *d = av_mallocz(sizeof(*d));
	if (!d) {
		*err = AVERROR(ENOMEM);
		return NULL;
	}
	d->ctx = avcodec_alloc_context3(codec);
	d->pkt = av_packet_alloc();
	d->tmp = av_frame_alloc();
	d->last = av_frame_alloc();
	if (!d->ctx || !d->pkt || !d->tmp || !d->last) {
		vg_dec_free(d);
		*err = AVERROR(ENOMEM);
		return NULL;
	}
	// One thread: the box runs many cameras on 2 cores, so parallelism comes
	// from decoding cameras concurrently, and frame threading would add a
	// frame of latency per thread.
	d->ctx->thread_count = 1;
	d->ctx->flags |= AV_CODEC_FLAG_LOW_DELAY;
	// Broken cameras and lossy links would flood stderr; failures reach the
	// caller as errors instead. Messages still show at -loglevel verbose.
	d->ctx->log_level_offset = AV_LOG_VERBOSE - AV_LOG_ERROR;
	if (skip_loop_filter) {
		// H.264's deblocking filter, H.265's deblocking and SAO: a quarter
		// of the decoding time, for edges that a 320-px detector averages
		// away anyway. References then differ slightly from the encoder's,
		// so these pictures are for analysis only (see Decoder options).
		d->ctx->skip_loop_filter = AVDISCARD_ALL;
	}
	int ret = avcodec_open2(d->ctx, codec, NULL);
	if (ret < 0) {
		vg_dec_free(d);
		*err = ret;
		return NULL;
	}
	return d;
}

void vg_dec_free(vg_dec *d) {
	if (!d) {
		return;
	}
	avcodec_free_context(&d->ctx);
	av_packet_free(&d->pkt);
	av_buffer_unref(&d->buf);
	av_frame_free(&d->tmp);
	av_frame_free(&d->last);
	sws_freeContext(d->gray.ctx);
	sws_freeContext(d->yuv.ctx);
	av_free(d);
}

// vg_dec_buf returns a writable input buffer of at least need bytes plus the
// zeroed padding FFmpeg's bitstream readers may over-read.
uint8_t *vg_dec_buf(vg_dec *d, int need) {
	if (need < 0 || need > INT_MAX - AV_INPUT_BUFFER_PADDING_SIZE) {
		return NULL;
	}
	size_t want = (size_t)need + AV_INPUT_BUFFER_PADDING_SIZE;
	if (!d->buf || d->buf->size < want || !av_buffer_is_writable(d->buf)) {
		size_t size = want;
		if (d->buf && d->buf->size * 3 / 2 > size) {
			size = d->buf->size * 3 / 2;  // amortise growth across rising bitrates
		}
		av_buffer_unref(&d->buf);
		d->buf = av_buffer_alloc(size);
		if (!d->buf) {
			return NULL;
		}
	}
	memset(d->buf->data + need, 0, AV_INPUT_BUFFER_PADDING_SIZE);
	return d->buf->data;
}

static void take_frame(vg_dec *d) {
	av_frame_unref(d->last);
	av_frame_move_ref(d->last, d->tmp);
	d->have_last = 1;
	d->got = 1;
	d->errflags = d->last->decode_error_flags;
	if (d->last->flags & AV_FRAME_FLAG_CORRUPT) {
		d->errflags |= FF_DECODE_ERROR_INVALID_BITSTREAM;
	}
}

static void end_drain(vg_dec *d) {
	avcodec_flush_buffers(d->ctx);
	d->draining = 0;
}

// vg_dec_decode sends size bytes of d->buf and keeps the newest picture in
// d->last. The packet references d->buf instead of pointing at it, so
// avcodec_send_packet does not copy the access unit.
int vg_dec_decode(vg_dec *d, int size) {
	d->got = 0;
	d->errflags = 0;
	if (d->draining) {
		end_drain(d);
	}
	d->pkt->buf = av_buffer_ref(d->buf);
	if (!d->pkt->buf) {
		return AVERROR(ENOMEM);
	}
	d->pkt->data = d->buf->data;
	d->pkt->size = size;
	int sent = avcodec_send_packet(d->ctx, d->pkt);
	av_packet_unref(d->pkt);
	// Drain even when sending failed: the decoder may still hold pictures.
	for (;;) {
		int ret = avcodec_receive_frame(d->ctx, d->tmp);
		if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF) {
			break;
		}
		if (ret < 0) {
			return ret;
		}
		take_frame(d);
	}
	return sent;
}

// vg_dec_drain returns the pictures a reordering (B-frame) stream still
// holds, one per call, then resets the decoder for new input.
int vg_dec_drain(vg_dec *d) {
	d->got = 0;
	d->errflags = 0;
	if (!d->draining) {
		int ret = avcodec_send_packet(d->ctx, NULL);
		if (ret < 0 && ret != AVERROR_EOF) {
			return ret;
		}
		d->draining = 1;
	}
	int ret = avcodec_receive_frame(d->ctx, d->tmp);
	if (ret == 0) {
		take_frame(d);
		return 0;
	}
	end_drain(d);
	return ret == AVERROR_EOF || ret == AVERROR(EAGAIN) ? 0 : ret;
}

static int full_range(const AVFrame *f) {
	switch (f->format) {
	case AV_PIX_FMT_YUVJ420P:
	case AV_PIX_FMT_YUVJ422P:
	case AV_PIX_FMT_YUVJ444P:
		return 1;
	}
	return f->color_range == AVCOL_RANGE_JPEG;
}

// plain_format maps the deprecated full-range YUVJ formats, which decoders
// still output for full-range streams, to their layout twins; the range is
// passed to swscale explicitly, and it warns about YUVJ on every new context.
static enum AVPixelFormat plain_format(enum AVPixelFormat fmt) {
	switch (fmt) {
	case AV_PIX_FMT_YUVJ420P:
		return AV_PIX_FMT_YUV420P;
	case AV_PIX_FMT_YUVJ422P:
		return AV_PIX_FMT_YUV422P;
	case AV_PIX_FMT_YUVJ444P:
		return AV_PIX_FMT_YUV444P;
	default:
		return fmt;
	}
}

static struct SwsContext *scaler_get(vg_scaler *s, const AVFrame *f, int dw, int dh,
	enum AVPixelFormat dfmt, int flags, int srange, int drange) {
	int sfmt = plain_format(f->format);
	if (s->ctx && s->sw == f->width && s->sh == f->height && s->sfmt == sfmt &&
		s->dw == dw && s->dh == dh && s->dfmt == dfmt && s->flags == flags &&
		s->srange == srange && s->drange == drange) {
		return s->ctx;
	}
	sws_freeContext(s->ctx);
	s->ctx = sws_alloc_context();
	if (!s->ctx) {
		return NULL;
	}
	if (av_opt_set_int(s->ctx, "srcw", f->width, 0) < 0 ||
		av_opt_set_int(s->ctx, "srch", f->height, 0) < 0 ||
		av_opt_set_int(s->ctx, "src_format", sfmt, 0) < 0 ||
		av_opt_set_int(s->ctx, "dstw", dw, 0) < 0 ||
		av_opt_set_int(s->ctx, "dsth", dh, 0) < 0 ||
		av_opt_set_int(s->ctx, "dst_format", dfmt, 0) < 0 ||
		av_opt_set_int(s->ctx, "sws_flags", flags, 0) < 0 ||
		av_opt_set_int(s->ctx, "src_range", srange, 0) < 0 ||
		av_opt_set_int(s->ctx, "dst_range", drange, 0) < 0 ||
		sws_init_context(s->ctx, NULL, NULL) < 0) {
		sws_freeContext(s->ctx);
		s->ctx = NULL;
		return NULL;
	}
	s->sw = f->width;
	s->sh = f->height;
	s->sfmt = sfmt;
	s->dw = dw;
	s->dh = dh;
	s->dfmt = dfmt;
	s->flags = flags;
	s->srange = srange;
	s->drange = drange;
	return s->ctx;
}

static inline uint8_t expand1(uint8_t y) {
	// (y-16)*255/219 with 16-bit intermediates, within 1 of exact.
	uint16_t v = y > 16 ? y - 16 : 0;
	v = (uint16_t)(v * 149 + 64) >> 7;
	return v > 255 ? 255 : v;
}

// expand_range maps limited-range luma (16..235) to full range in place.
// The fixed 16-byte inner loop lets GCC vectorise it at -O2.
static void expand_range(uint8_t *p, size_t n) {
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		for (int j = 0; j < 16; j++) {
			p[i + j] = expand1(p[i + j]);
		}
	}
	for (; i < n; i++) {
		p[i] = expand1(p[i]);
	}
}

// vg_dec_gray scales the last picture to w x h GRAY8. swscale is told that
// source and destination ranges match, so it only scales luma (and takes its
// plain-copy path at full size); its own limited-to-full conversion is ~3x
// slower than scaling and expanding the smaller output here.
int vg_dec_gray(vg_dec *d, int w, int h, int flags, uint8_t *dst) {
	AVFrame *f = d->last;
	struct SwsContext *c = scaler_get(&d->gray, f, w, h, AV_PIX_FMT_GRAY8, flags, 1, 1);
	if (!c) {
		return AVERROR(EINVAL);
	}
	uint8_t *data[4] = {dst, NULL, NULL, NULL};
	int stride[4] = {w, 0, 0, 0};
	int ret = sws_scale(c, (const uint8_t *const *)f->data, f->linesize, 0, f->height, data, stride);
	if (ret < 0) {
		return ret;
	}
	if (!full_range(f)) {
		expand_range(dst, (size_t)w * h);
	}
	return 0;
}

int vg_dec_yuv420(vg_dec *d, int w, int h, int flags, uint8_t *y, uint8_t *cb, uint8_t *cr) {
	AVFrame *f = d->last;
	// JFIF, and so Go's image.YCbCr, is full range.
	struct SwsContext *c = scaler_get(&d->yuv, f, w, h, AV_PIX_FMT_YUV420P, flags, full_range(f), 1);
	if (!c) {
		return AVERROR(EINVAL);
	}
	uint8_t *data[4] = {y, cb, cr, NULL};
	int stride[4] = {w, w / 2, w / 2, 0};
	int ret = sws_scale(c, (const uint8_t *const *)f->data, f->linesize, 0, f->height, data, stride);
	return ret < 0 ? ret : 0;
}

static int is_wanted(const AVStream *st) {
	const AVCodecParameters *p = st->codecpar;
	return p->codec_type == AVMEDIA_TYPE_VIDEO &&
		!(st->disposition & AV_DISPOSITION_ATTACHED_PIC);
}

// vg_reader_open opens path and selects its first H.264/H.265 video stream.
// It returns 0, a negative AVERROR, 1 when the file has no video stream, or
// 2 when its first video stream has another codec (named in errbuf).
int vg_reader_open(vg_reader *r, const char *path, char *errbuf, int errlen) {
	r->op = "avformat_open_input";
	int ret = avformat_open_input(&r->fmt, path, NULL, NULL);
	if (ret < 0) {
		return ret;
	}
	r->op = "avformat_find_stream_info";
	ret = avformat_find_stream_info(r->fmt, NULL);
	if (ret < 0) {
		return ret;
	}
	r->index = -1;
	int other = -1;
	for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
		AVStream *st = r->fmt->streams[i];
		if (!is_wanted(st)) {
			continue;
		}
		enum AVCodecID id = st->codecpar->codec_id;
		if (id == AV_CODEC_ID_H264 || id == AV_CODEC_ID_HEVC) {
			r->index = i;
			break;
		}
		if (other < 0) {
			other = i;
		}
	}
	if (r->index < 0) {
		if (other < 0) {
			return 1;
		}
		enum AVCodecID id = r->fmt->streams[other]->codecpar->codec_id;
		const AVCodecDescriptor *desc = avcodec_descriptor_get(id);
		snprintf(errbuf, errlen, "%s (%s)", avcodec_get_name(id),
			desc && desc->long_name ? desc->long_name : "unknown");
		return 2;
	}
	// Let the demuxer skip the streams we ignore.
	for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
		if ((int)i != r->index) {
			r->fmt->streams[i]->discard = AVDISCARD_ALL;
		}
	}
	r->st = r->fmt->streams[r->index];
	const char *name = r->st->codecpar->codec_id == AV_CODEC_ID_H264 ? "h264_mp4toannexb" : "hevc_mp4toannexb";
	r->op = name;
	const AVBitStreamFilter *f = av_bsf_get_by_name(name);
	if (!f) {
		return AVERROR_BSF_NOT_FOUND;
	}
	if ((ret = av_bsf_alloc(f, &r->bsf)) < 0) {
		return ret;
	}
	if ((ret = avcodec_parameters_copy(r->bsf->par_in, r->st->codecpar)) < 0) {
		return ret;
	}
	r->bsf->time_base_in = r->st->time_base;
	if ((ret = av_bsf_init(r->bsf)) < 0) {
		return ret;
	}
	r->pkt = av_packet_alloc();
	if (!r->pkt) {
		return AVERROR(ENOMEM);
	}
	return 0;
}

void vg_reader_close(vg_reader *r) {
	av_packet_free(&r->pkt);
	av_bsf_free(&r->bsf);
	avformat_close_input(&r->fmt);
}

// vg_reader_next leaves the next Annex-B packet of the selected stream in
// r->pkt. It returns AVERROR_EOF after the filter has been drained.
int vg_reader_next(vg_reader *r) {
	for (;;) {
		av_packet_unref(r->pkt);
		int ret = av_bsf_receive_packet(r->bsf, r->pkt);
		if (ret == 0 && r->pkt->size == 0) {
			continue;
		}
		if (ret != AVERROR(EAGAIN)) {
			return ret;
		}
		ret = av_read_frame(r->fmt, r->pkt);
		if (ret == AVERROR_EOF) {
			if ((ret = av_bsf_send_packet(r->bsf, NULL)) < 0) {
				return ret;
			}
			continue;
		}
		if (ret < 0) {
			return ret;
		}
		if (r->pkt->stream_index != r->index || r->pkt->size == 0) {
			continue;
		}
		if ((ret = av_bsf_send_packet(r->bsf, r->pkt)) < 0) {
			return ret;
		}
	}
}

int64_t vg_rescale_ns(int64_t v, AVRational tb) {
	return av_rescale_q(v, tb, (AVRational){1, 1000000000});
}

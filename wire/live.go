package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Live view media does not travel in JSON envelopes: base64 would grow
// every fragment by a third and cost a copy on both ends. An edge sends
// each piece of a live stream as one binary websocket frame, a 28-byte
// header and two short strings followed by the fMP4 bytes; central
// forwards the same bytes to browsers unchanged, so the browser reads the
// same header (central/web/live.js).
//
//	0  "VL"         magic
//	2  1            LiveVersion
//	3  kind         LiveInit | LiveFragment | LiveEnd
//	4  flags        bit 0: the fragment starts with a keyframe
//	5  camera len   (1..255 bytes)
//	6  codec len    (0..255 bytes; RFC 6381 codec string, init only)
//	7  0            reserved
//	8  seq          uint32, big endian: fragment number since the init
//	12 wall clock   int64 µs since the Unix epoch: the camera's UTC time
//	                of the fragment's first sample (RTCP when it sends it)
//	20 base time    uint64: the fragment's decode time in LiveTimescale ticks
//	28 camera, codec, payload
//
// Control (start, keep-alive, stop) stays on the JSON request path:
// live_start starts a stream or, repeated, keeps it alive; live_stop ends it.

// LiveVersion is the version of the binary live frame header.
const LiveVersion = 1

// LiveTimescale is the fMP4 timescale of live video tracks (RTP's 90 kHz).
const LiveTimescale = 90000

// LiveHeaderBytes is the fixed part of a live frame header.
const LiveHeaderBytes = 28

// Kinds of live frames.
const (
	LiveInit     = 1 // fMP4 initialisation segment (ftyp+moov); Codec is set
	LiveFragment = 2 // one moof+mdat
	LiveEnd      = 3 // the edge ended the stream (camera gone, keep-alive missed); no payload
)

const liveFlagKey = 1

// LiveFrame is one binary frame of a live stream.
type LiveFrame struct {
	Kind     byte
	Key      bool // fragment starts with a keyframe: a new viewer may start here
	Camera   string
	Codec    string // e.g. "avc1.4d401f"; init frames only
	Seq      uint32
	Time     time.Time // wall clock of the first sample
	BaseTime uint64    // decode time of the first sample, LiveTimescale ticks
	Data     []byte
}

// MarshalLive encodes a live frame.
func MarshalLive(f LiveFrame) ([]byte, error) {
	if len(f.Camera) == 0 || len(f.Camera) > 255 || len(f.Codec) > 255 {
		return nil, errors.New("wire: live frame needs a camera ID of 1–255 bytes and a codec of at most 255")
	}
	if f.Kind < LiveInit || f.Kind > LiveEnd {
		return nil, fmt.Errorf("wire: unknown live frame kind %d", f.Kind)
	}
	n := LiveHeaderBytes + len(f.Camera) + len(f.Codec) + len(f.Data)
	if n > MaxFrameBytes {
		return nil, fmt.Errorf("wire: live frame of %d bytes exceeds %d", n, MaxFrameBytes)
	}
	b := make([]byte, LiveHeaderBytes, n)
	b[0], b[1], b[2], b[3] = 'V', 'L', LiveVersion, f.Kind
	if f.Key {
		b[4] = liveFlagKey
	}
	b[5], b[6] = byte(len(f.Camera)), byte(len(f.Codec))
	binary.BigEndian.PutUint32(b[8:], f.Seq)
	var us int64
	if !f.Time.IsZero() {
		us = f.Time.UnixMicro()
	}
	binary.BigEndian.PutUint64(b[12:], uint64(us))
	binary.BigEndian.PutUint64(b[20:], f.BaseTime)
	b = append(b, f.Camera...)
	b = append(b, f.Codec...)
	return append(b, f.Data...), nil
}

// UnmarshalLive decodes a live frame; Data aliases b.
func UnmarshalLive(b []byte) (LiveFrame, error) {
	var f LiveFrame
	if len(b) < LiveHeaderBytes || b[0] != 'V' || b[1] != 'L' {
		return f, errors.New("wire: not a live frame")
	}
	if b[2] != LiveVersion {
		return f, fmt.Errorf("wire: live frame version %d (want %d)", b[2], LiveVersion)
	}
	f.Kind, f.Key = b[3], b[4]&liveFlagKey != 0
	if f.Kind < LiveInit || f.Kind > LiveEnd {
		return f, fmt.Errorf("wire: unknown live frame kind %d", f.Kind)
	}
	cl, kl := int(b[5]), int(b[6])
	if cl == 0 || len(b) < LiveHeaderBytes+cl+kl {
		return f, errors.New("wire: live frame header is truncated")
	}
	f.Seq = binary.BigEndian.Uint32(b[8:])
	if us := int64(binary.BigEndian.Uint64(b[12:])); us != 0 {
		f.Time = time.UnixMicro(us).UTC()
	}
	f.BaseTime = binary.BigEndian.Uint64(b[20:])
	p := LiveHeaderBytes
	f.Camera = string(b[p : p+cl])
	f.Codec = string(b[p+cl : p+cl+kl])
	f.Data = b[p+cl+kl:]
	return f, nil
}

// LiveCamera reads only the camera ID of a live frame (central's routing).
func LiveCamera(b []byte) (string, bool) {
	if len(b) < LiveHeaderBytes || b[0] != 'V' || b[1] != 'L' || b[5] == 0 || len(b) < LiveHeaderBytes+int(b[5]) {
		return "", false
	}
	return string(b[LiveHeaderBytes : LiveHeaderBytes+int(b[5])]), true
}

// LiveStarted is the edge's answer to live_start.
type LiveStarted struct {
	Camera string `json:"camera"`
	// KeepAliveS: the stream ends unless live_start is repeated within
	// this many seconds.
	KeepAliveS int `json:"keepalive_s"`
	// Running: the stream was already running (this was a keep-alive).
	Running bool `json:"running"`
}

package clips

import (
	"errors"
	"fmt"
	"time"

	"github.com/vigil-perimeter/vigil/streams/av"
)

// Thumbnail is a picture of one instant.
type Thumbnail struct {
	JPEG []byte
	Time time.Time // of the frame shown: the last one at or before the instant asked for
}

// Thumbnail decodes the frame shown at instant at: from the keyframe
// before it through every access unit up to it, then encodes a JPEG at
// most maxWidth wide (0: full size).
func (rd *playback) Thumbnail(camera string, at time.Time, maxWidth int) (Thumbnail, error) {
	s := rd.s
	r, err := s.recorder(camera)
	if err != nil {
		return Thumbnail{}, err
	}
	if err := rd.acquire(); err != nil {
		return Thumbnail{}, err
	}
	defer rd.readers.Done()
	t := at.UnixNano()
	noVideo := fmt.Errorf("%w: %s has no video at %s", ErrNoVideo, camera, at.UTC().Format(time.RFC3339Nano))
	release := s.lease(camera, t-int64(s.cfg.ChunkDuration)-int64(maxGap), t)
	defer release()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()

	// From the keyframe at or before t through the unit shown at t; an
	// instant in a gap has no unit at or before it in its chunk.
	p, err := planRange(txn, r.id, s.segPath(r), s.bucketDur, t, t+1)
	if errors.Is(err, ErrNoVideo) {
		return Thumbnail{}, noVideo
	}
	if err != nil {
		return Thumbnail{}, err
	}
	dec, err := av.NewDecoder(p.codec)
	if err != nil {
		return Thumbnail{}, err
	}
	defer dec.Close()
	var cache partCache
	defer cache.close()
	var nalus [][]byte
	var got bool
	for i, smp := range p.samples {
		payload, err := cache.payload(p, smp)
		if err != nil {
			return Thumbnail{}, err
		}
		if nalus, err = splitAVCC(payload, nalus[:0]); err != nil {
			return Thumbnail{}, err
		}
		got, err = dec.Decode(nalus)
		// A damaged reference frame still yields the best picture there is;
		// only the last frame's own failure matters.
		if err != nil && i == len(p.samples)-1 && !got {
			return Thumbnail{}, fmt.Errorf("clips: thumbnail of %s at %v: %w", camera, at, err)
		}
	}
	if !got {
		return Thumbnail{}, fmt.Errorf("clips: thumbnail of %s at %v: the decoder produced no picture", camera, at)
	}
	jpg, err := dec.JPEG(maxWidth, 85)
	if err != nil {
		return Thumbnail{}, err
	}
	return Thumbnail{JPEG: jpg, Time: time.Unix(0, p.samples[len(p.samples)-1].t).UTC()}, nil
}

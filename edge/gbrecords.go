package edge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigil-perimeter/vigil/edge/clips"
	"github.com/vigil-perimeter/vigil/gb28181/device"
	"github.com/vigil-perimeter/vigil/gb28181/manscdp"
)

// RecordInfo for a GB/T 28181 platform (device.Records): what a camera
// channel has recorded in the queried window, read from the clip store's
// timeline. The edge records continuously, so its "files" are the
// timeline's spans of continuous recording, cut at every whole hour (a
// platform lists, plays and downloads items, and an item of days would be
// one line it cannot page through), each clipped to the window asked for.
// Type time lists them; alarm lists the evidence pinned for alerts
// (clips.Pin) on that camera, clipped to what was recorded; all lists
// both; manual lists nothing (nobody records by hand on the edge). The
// items' times are written in the platform's zone.
const (
	gbRecordItemMax = time.Hour
	// gbRecordsMax bounds one answer (a month of hourly items is 744):
	// a query past it gets the first ones, and a warning is logged.
	gbRecordsMax = 2000
)

// gbRecordStore is what RecordInfo reads of the clip store.
type gbRecordStore interface {
	Timeline(camera string, from, to time.Time) (clips.Timeline, error)
	Pins() []clips.Pin
}

// gbRecords answers RecordInfo queries.
type gbRecords struct {
	store  gbRecordStore
	camera func(channel string) (string, bool)
	loc    *time.Location // the platform's zone
	// recorderID is this device's GB ID (RecorderID of every item).
	recorderID string
	log        *slog.Logger
}

// Records implements device.Records.
func (r *gbRecords) Records(ctx context.Context, channelID string, start, end time.Time, typ string) ([]manscdp.RecordItem, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cam, ok := r.camera(channelID)
	if !ok {
		return nil, &device.StatusError{Code: 404, Reason: "Not Found"}
	}
	if !start.IsZero() && !end.IsZero() && !end.After(start) {
		return []manscdp.RecordItem{}, nil
	}
	tl, err := r.store.Timeline(cam, start, end)
	if errors.Is(err, clips.ErrUnknownCamera) {
		return []manscdp.RecordItem{}, nil // configured but never recorded
	}
	if err != nil {
		return nil, fmt.Errorf("edge: record info of %s: %w", cam, err)
	}
	items := []manscdp.RecordItem{}
	add := func(from, to time.Time, typ string, bytes int64) bool {
		if len(items) >= gbRecordsMax {
			return false
		}
		it := manscdp.NewRecordItem(channelID, cam, from, to, typ, r.loc)
		it.RecorderID, it.FileSize = r.recorderID, bytes
		items = append(items, it)
		return true
	}
	full := true
	if typ == manscdp.RecordAll || typ == manscdp.RecordTime || typ == "" {
		full = spanItems(tl.Spans, add)
	}
	if full && (typ == manscdp.RecordAll || typ == manscdp.RecordAlarm) {
		full = alarmItems(r.store.Pins(), cam, tl.Spans, add)
	}
	if !full {
		r.log.Warn("gb28181 record info cut short: the platform asked for a window with more items than one answer holds",
			"channel", channelID, "camera", cam, "items", len(items), "start", start, "end", end)
	}
	return items, nil
}

// spanItems cuts spans at whole hours; false when add refused one.
func spanItems(spans []clips.Span, add func(from, to time.Time, typ string, bytes int64) bool) bool {
	for _, sp := range spans {
		total := sp.End.Sub(sp.Start)
		for from := sp.Start; from.Before(sp.End); {
			to := from.Truncate(gbRecordItemMax).Add(gbRecordItemMax)
			if to.After(sp.End) {
				to = sp.End
			}
			var bytes int64
			if total > 0 { // the span's bytes shared by time
				bytes = int64(float64(sp.Bytes) * float64(to.Sub(from)) / float64(total))
			}
			if !add(from, to, manscdp.RecordTime, bytes) {
				return false
			}
			from = to
		}
	}
	return true
}

// alarmItems lists camera's pins, each clipped to the recorded spans;
// false when add refused one.
func alarmItems(pins []clips.Pin, cam string, spans []clips.Span, add func(from, to time.Time, typ string, bytes int64) bool) bool {
	for _, p := range pins {
		if p.Camera != cam {
			continue
		}
		for _, sp := range spans {
			from, to := later(p.From, sp.Start), earlier(p.To, sp.End)
			if !to.After(from) {
				continue
			}
			if !add(from, to, manscdp.RecordAlarm, 0) {
				return false
			}
		}
	}
	return true
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

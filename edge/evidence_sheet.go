package edge

import (
	"context"
	"fmt"
	"os"

	"github.com/vigil-perimeter/vigil/streams/contactsheet"
	"github.com/vigil-perimeter/vigil/wire"
)

// Contact sheets of evidence retrievals (wire.MethodContactSheet). The
// edge has the decoders, so it makes the sheet of an export central has
// fetched (and the edge still pins) and central copies the JPEG into the
// bundle unchanged: central needs no FFmpeg or OpenCV (and no cgo).

// evidenceSheets lets one contact sheet decode at a time: the box's
// cores belong to its cameras' analysis first.
var evidenceSheets = make(chan struct{}, 1)

// evidenceContactSheet writes the export of the range to a temporary
// file in the data directory (the decoder reads a file) and makes its
// contact sheet, the first picture's time being the export's start.
func (e *evidenceSide) contactSheet(ctx context.Context, req wire.Request) ([]byte, error) {
	select {
	case evidenceSheets <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-evidenceSheets }()
	ex, err := e.clips.OpenExport(req.Camera, req.From, req.To)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	f, err := os.CreateTemp(e.dataDir, ".contact-*.mp4")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = ex.WriteTo(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("contact sheet of %s: %w", req.Camera, err)
	}
	jpg, err := contactsheet.Make(f.Name(), ex.Info().Start, req.Evidence.Title, contactsheet.Options{})
	if err != nil {
		return nil, err
	}
	e.log.Info("evidence: contact sheet made", "camera", req.Camera, "key", req.Evidence.Key, "bytes", len(jpg))
	return jpg, nil
}

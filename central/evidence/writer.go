package evidence

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"image/jpeg"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/central/audit"
)

// Request is everything a bundle states. Central fills it from the
// liaison's request, its store and the retrieved video.
type Request struct {
	BundleID   string // default: 16 random hex digits
	CaseNumber string
	Requester  audit.Actor
	Reason     string
	ExportedAt time.Time // default: now
	Software   string    // e.g. "vigil 0.1.0"
	Key        ed25519.PrivateKey
	Cameras    []Camera
	// Custody is the chain of custody: a slice of the audit log as
	// written by audit.Log.Export. It must verify on its own.
	Custody []byte
	// Extra is copied into the manifest as is (small JSON values).
	Extra map[string]json.RawMessage
	// Open reads a camera's VideoPath and ContactSheetPath (default: the
	// file system; central passes its shared store's when replicas share
	// one).
	Open func(path string) (File, error)
}

// File is a video or contact sheet Build reads.
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

// osFile is a file of the file system as a File.
type osFile struct {
	*os.File
	size int64
}

func (f osFile) Size() int64 { return f.size }

// OpenFile opens a file of the file system as a File (Request.Open's
// default).
func OpenFile(path string) (File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return osFile{f, st.Size()}, nil
}

// Camera is one camera's video and what is known about it.
type Camera struct {
	SiteID, SiteName         string
	EntranceID, EntranceName string
	CameraID, CameraName     string
	EdgeID                   string
	Requested                Range
	Actual                   Range // of the video in VideoPath, as the edge exported it
	ClockOffset              time.Duration
	ClockSource              string
	// Codec ("h264"/"h265"), Width and Height: checked against the MP4
	// when set, taken from it when zero.
	Codec         string
	Width, Height int
	// VideoPath is the original MP4 as retrieved from the edge; it is
	// copied into the bundle byte for byte.
	VideoPath string
	// ContactSheetPath is the camera's contact sheet, a JPEG copied into
	// the bundle byte for byte (contact/<camera>.jpg). The edge makes it
	// from the same export (streams/contactsheet, over the retrieval
	// protocol) because decoding needs FFmpeg and OpenCV, which central
	// does without; SheetTitle is its title line. Empty: the bundle has
	// no sheet for this camera and says why (ContactSheetNote, or a
	// default) in the manifest and the README.
	ContactSheetPath string
	ContactSheetNote string
	Alerts           []json.RawMessage
	GateEvents       []json.RawMessage
}

// memberHeader is the one zip header every member gets: stored (video
// does not compress and stays seekable in the zip), the export time as
// modification time. Verify rebuilds the zip from the same headers.
func memberHeader(name string, modified time.Time) *zip.FileHeader {
	return &zip.FileHeader{Name: name, Method: zip.Store, Modified: modified.UTC().Truncate(time.Second)}
}

type prepared struct {
	cam   Camera
	man   CameraManifest
	size  int64
	sheet []byte // the contact sheet's JPEG, read before any byte is written
}

// NoContactSheet is the manifest's and README's note for a camera
// without a contact sheet when the caller gave no reason.
const NoContactSheet = "no contact sheet was made for this video"

// maxContactSheet bounds a contact sheet read into memory.
const maxContactSheet = 16 << 20

// SheetTitle is the title line of a camera's contact sheet: where, and
// the actual range in UTC.
func SheetTitle(site, entrance, camera string, actual Range) string {
	return fmt.Sprintf("%s / %s / %s  —  %s .. %s UTC", site, entrance, camera,
		actual.Start.UTC().Format("2006-01-02 15:04:05"), actual.End.UTC().Format("15:04:05"))
}

// Build writes the bundle for req to w as a zip, streaming each video
// from its file, and returns the manifest it signed. Contact sheets are
// made by the edge (see Camera.ContactSheetPath) and copied as they are.
func Build(ctx context.Context, w io.Writer, req Request) (*Manifest, error) {
	if len(req.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("evidence: no evidence key")
	}
	m, err := newManifest(&req)
	if err != nil {
		return nil, err
	}
	if req.Open == nil {
		req.Open = OpenFile
	}
	preps, err := prepareCameras(m, req.Cameras, req.Open)
	if err != nil {
		return nil, err
	}
	if err := precheck(m, preps); err != nil {
		return nil, err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw := &bundleWriter{ctx: ctx, zw: zip.NewWriter(w), m: m, open: req.Open}
	if err := bw.members(preps, req.Custody); err != nil {
		return nil, err
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if err := bw.sign(req.Key); err != nil {
		return nil, err
	}
	if err := bw.zw.Close(); err != nil {
		return nil, fmt.Errorf("evidence: write zip: %w", err)
	}
	return m, nil
}

// newManifest fills req's defaults and starts its manifest: who, why,
// when, the signing key and the chain of custody, which must verify.
func newManifest(req *Request) (*Manifest, error) {
	if req.BundleID == "" {
		var b [8]byte
		rand.Read(b[:])
		req.BundleID = hex.EncodeToString(b[:])
	}
	if req.ExportedAt.IsZero() {
		req.ExportedAt = time.Now()
	}
	pub := req.Key.Public().(ed25519.PublicKey)
	m := &Manifest{
		Format: Format, BundleID: req.BundleID, CaseNumber: req.CaseNumber, Requester: req.Requester,
		Reason: req.Reason, ExportedAt: req.ExportedAt.UTC().Round(0), Software: req.Software,
		SigningKey: FormatPublicKey(pub), SigningKeyFingerprint: Fingerprint(pub), Extra: req.Extra,
	}
	custody, err := audit.VerifyExport(bytes.NewReader(req.Custody))
	if err != nil {
		return nil, fmt.Errorf("evidence: custody: %w", err)
	}
	m.Custody = CustodyManifest{File: CustodyName, FirstSeq: custody.First, LastSeq: custody.Last,
		Entries: custody.Entries, Prev: custody.Prev, Head: custody.Head}
	return m, nil
}

// prepareCameras prepares each camera, names its members (one base name
// per camera, from its ID, made unique) and adds it to the manifest.
func prepareCameras(m *Manifest, cams []Camera, open func(string) (File, error)) ([]*prepared, error) {
	preps := make([]*prepared, len(cams))
	names := map[string]bool{}
	for i, c := range cams {
		p, err := prepare(c, open)
		if err != nil {
			return nil, err
		}
		base := safeName(c.CameraID)
		for n := 2; names[base]; n++ {
			base = fmt.Sprintf("%s-%d", safeName(c.CameraID), n)
		}
		names[base] = true
		p.man.Video = "video/" + base + ".mp4"
		if p.sheet != nil {
			p.man.ContactSheet = "contact/" + base + ".jpg"
		}
		preps[i] = p
		m.Cameras = append(m.Cameras, p.man)
	}
	return preps, nil
}

// precheck checks the manifest, with placeholder hashes, before any byte
// is written: a request that would make an inconsistent bundle fails
// here. It leaves m.Files empty for the writer to fill.
func precheck(m *Manifest, preps []*prepared) error {
	for _, p := range preps {
		m.Files = append(m.Files, FileEntry{Name: p.man.Video})
		if p.man.ContactSheet != "" {
			m.Files = append(m.Files, FileEntry{Name: p.man.ContactSheet})
		}
	}
	m.Files = append(m.Files, FileEntry{Name: CustodyName}, FileEntry{Name: ReadmeName})
	for i := range m.Files {
		m.Files[i].SHA256 = zeroHash
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	m.Files = m.Files[:0]
	return nil
}

// bundleWriter writes the members of one bundle, recording each in the
// manifest's file list.
type bundleWriter struct {
	ctx  context.Context
	zw   *zip.Writer
	m    *Manifest
	open func(string) (File, error)
}

// add writes one member from src, hashing it on the way.
func (bw *bundleWriter) add(name string, src io.Reader) error {
	fw, err := bw.zw.CreateHeader(memberHeader(name, bw.m.ExportedAt))
	if err != nil {
		return fmt.Errorf("evidence: write %s: %w", name, err)
	}
	h := sha256.New()
	n, err := copyHashing(bw.ctx, fw, h, src)
	if err != nil {
		return fmt.Errorf("evidence: write %s: %w", name, err)
	}
	bw.m.Files = append(bw.m.Files, FileEntry{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// members writes the listed members in the manifest's order: videos,
// contact sheets, the chain of custody, the README.
func (bw *bundleWriter) members(preps []*prepared, custody []byte) error {
	for _, p := range preps {
		if err := bw.video(p); err != nil {
			return err
		}
	}
	for _, p := range preps {
		if p.man.ContactSheet == "" {
			continue
		}
		if err := bw.add(p.man.ContactSheet, bytes.NewReader(p.sheet)); err != nil {
			return err
		}
	}
	if err := bw.add(CustodyName, bytes.NewReader(custody)); err != nil {
		return err
	}
	return bw.add(ReadmeName, bytes.NewReader(readme(bw.m)))
}

// video copies a camera's MP4 and checks it did not change size since
// it was prepared.
func (bw *bundleWriter) video(p *prepared) error {
	f, err := bw.open(p.cam.VideoPath)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	err = bw.add(p.man.Video, f)
	f.Close()
	if err != nil {
		return err
	}
	if got := bw.m.Files[len(bw.m.Files)-1].Size; got != p.size {
		return fmt.Errorf("evidence: %s changed while it was copied (%d bytes, then %d)", p.cam.VideoPath, p.size, got)
	}
	return nil
}

// sign writes manifest.json and its Ed25519 signature, the last two
// members.
func (bw *bundleWriter) sign(key ed25519.PrivateKey) error {
	mj, err := json.MarshalIndent(bw.m, "", "  ")
	if err != nil {
		return fmt.Errorf("evidence: manifest: %w", err)
	}
	mj = append(mj, '\n')
	sig := ed25519.Sign(key, mj)
	for _, part := range []struct {
		name string
		b    []byte
	}{{ManifestName, mj}, {SignatureName, sig}} {
		fw, err := bw.zw.CreateHeader(memberHeader(part.name, bw.m.ExportedAt))
		if err == nil {
			_, err = fw.Write(part.b)
		}
		if err != nil {
			return fmt.Errorf("evidence: write %s: %w", part.name, err)
		}
	}
	return nil
}

const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// prepare reads the MP4's index and fills the camera's manifest entry,
// checking what the caller said against the file.
func prepare(c Camera, open func(string) (File, error)) (*prepared, error) {
	f, err := open(c.VideoPath)
	if err != nil {
		return nil, fmt.Errorf("evidence: camera %s: %w", c.CameraID, err)
	}
	defer f.Close()
	info, err := ProbeMP4(f, f.Size())
	if err != nil {
		return nil, fmt.Errorf("evidence: camera %s: %s: %w", c.CameraID, c.VideoPath, err)
	}
	bad := func(what string, a ...any) error {
		return fmt.Errorf("evidence: camera %s: %s: %s", c.CameraID, c.VideoPath, fmt.Sprintf(what, a...))
	}
	if c.Codec != "" && c.Codec != info.Codec {
		return nil, bad("codec %s, the request says %s", info.Codec, c.Codec)
	}
	if (c.Width != 0 && c.Width != info.Width) || (c.Height != 0 && c.Height != info.Height) {
		return nil, bad("%dx%d, the request says %dx%d", info.Width, info.Height, c.Width, c.Height)
	}
	act := Range{Start: c.Actual.Start.UTC().Round(0), End: c.Actual.End.UTC().Round(0)}
	if d := absDur(info.Duration - act.Duration()); d > max(info.FrameDuration(), time.Millisecond) {
		return nil, bad("the video lasts %v but the actual range %s..%s is %v", info.Duration, ts(act.Start), ts(act.End), act.Duration())
	}
	man := CameraManifest{
		SiteID: c.SiteID, SiteName: c.SiteName, EntranceID: c.EntranceID, EntranceName: c.EntranceName,
		CameraID: c.CameraID, CameraName: c.CameraName, EdgeID: c.EdgeID,
		Requested:       Range{Start: c.Requested.Start.UTC().Round(0), End: c.Requested.End.UTC().Round(0)},
		Actual:          act,
		DurationSeconds: act.Duration().Seconds(),
		Frames:          info.Frames,
		ClockOffsetMS:   float64(c.ClockOffset) / float64(time.Millisecond),
		ClockSource:     c.ClockSource,
		Codec:           info.Codec, Width: info.Width, Height: info.Height,
		Alerts: c.Alerts, GateEvents: c.GateEvents,
	}
	if man.Alerts == nil {
		man.Alerts = []json.RawMessage{}
	}
	if man.GateEvents == nil {
		man.GateEvents = []json.RawMessage{}
	}
	p := &prepared{cam: c, man: man, size: f.Size()}
	if c.ContactSheetPath == "" {
		p.man.ContactSheetNote = c.ContactSheetNote
		if p.man.ContactSheetNote == "" {
			p.man.ContactSheetNote = NoContactSheet
		}
		return p, nil
	}
	// Verify checks that a sheet is a JPEG: so does Build, before writing.
	sf, err := open(c.ContactSheetPath)
	if err != nil {
		return nil, fmt.Errorf("evidence: camera %s: contact sheet: %w", c.CameraID, err)
	}
	defer sf.Close()
	if p.sheet, err = io.ReadAll(io.LimitReader(sf, maxContactSheet+1)); err != nil {
		return nil, fmt.Errorf("evidence: camera %s: contact sheet: %w", c.CameraID, err)
	}
	if len(p.sheet) > maxContactSheet {
		return nil, bad("contact sheet %s is over %d bytes", c.ContactSheetPath, maxContactSheet)
	}
	if _, err := jpeg.DecodeConfig(bytes.NewReader(p.sheet)); err != nil {
		return nil, bad("contact sheet %s is not a JPEG: %v", c.ContactSheetPath, err)
	}
	return p, nil
}

const copyBuf = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBuf); return &b }}

// copyHashing copies src to dst, hashing what passes, and stops when ctx
// ends. Hashing runs beside the write (CRC-32 and the output) so that a
// 2-core box uses both: SHA-256 is the slowest step.
func copyHashing(ctx context.Context, dst io.Writer, h hash.Hash, src io.Reader) (int64, error) {
	bufs := [2]*[]byte{bufPool.Get().(*[]byte), bufPool.Get().(*[]byte)}
	defer bufPool.Put(bufs[0])
	defer bufPool.Put(bufs[1])
	work := make(chan []byte)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range work {
			h.Write(b)
			done <- struct{}{}
		}
	}()
	var n int64
	var err error
	pending := false
	for i := 0; ; i++ {
		if err = ctx.Err(); err != nil {
			break
		}
		buf := *bufs[i%2]
		var k int
		k, err = io.ReadFull(src, buf)
		if k > 0 {
			// Hash this chunk while it is written; the other buffer's hash
			// (the previous chunk) must be finished before it is reused.
			if pending {
				<-done
			}
			work <- buf[:k]
			pending = true
			if _, werr := dst.Write(buf[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = nil
			break
		}
		if err != nil {
			break
		}
	}
	if pending {
		<-done
	}
	close(work)
	<-done
	return n, err
}
